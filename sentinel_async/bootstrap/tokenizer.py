"""The bootstrap tokenizer: a byte-level BPE trained on retail text, with a Qwen-style chat template.

Runs of digits can be cut into fixed groups (`digit_group` digits, from the left), each group one token. The
default is one digit per token: only ten tokens, each seen constantly, which a small model learns to copy
(with the slot-copy warm-up) where 3-digit groups (1,000 rarer tokens) stayed uncopied in our measurements.
Digit pairs (100 tokens) were worse too: the `tiny` build with them reproduced 45% of the test split's expert
turns (teacher-forced) against 57% with single digits, and stopped copying order ids it had copied before.
The corpus is the retail database, the tool schemas, the domain policy and rendered demonstration dialogues.

The chat template is Qwen's layout (`<|im_start|>role\\n...<|im_end|>`, `<tools>`, `<tool_call>{json}</tool_call>`,
tool results as `<tool_response>` in a user turn, `{% generation %}` markers for `return_assistant_tokens_mask`).
With `PromptStyle.compact` (the default for the small bootstrap model) it replaces the conversation's system
message (the ~6.7k-character retail policy) by `COMPACT_SYSTEM_PROMPT` and lists each tool as one line,
`name(arg, ...)`, instead of its JSON schema: the prompt prefix drops from ~4k tokens to ~250, which is what
makes CPU generation and training practical. The choice is baked into the saved template, so any user of the
tokenizer (`TokenPolicy`, SFT, the solver) renders the same prompt. torch/transformers are imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Control tokens, ids 0-2 (special: dropped by `decode(skip_special_tokens=True)`)."""

MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")
"""Added tokens that are not special, as in Qwen's tokenizer."""

PromptStyle = Literal["compact", "full"]

COMPACT_SYSTEM_PROMPT = (
    "You are a retail customer service agent. Authenticate the user first: find the user id by email, or by "
    "first name, last name and zip. Then help only that user. Look up users, orders and products with the "
    "tools; never make up ids or facts. Pending orders can be cancelled, or have their address, payment or "
    "items modified; delivered orders can be returned or exchanged, items only for other variants of the same "
    "product. Before any change, list its details and wait for an explicit yes. Make at most one tool call per "
    "turn, and do not write to the user in the same turn. Transfer to a human agent only when the request "
    "cannot be handled with the tools."
)
"""The short policy the compact prompt style shows instead of the domain's full policy text."""

_TOOLS_HEADER = (
    "# Tools\\n\\nYou may call one function per turn. The functions, within <tools></tools> XML tags:\\n<tools>"
)
_TOOLS_FOOTER = (
    "\\n</tools>\\n\\nTo call a function, return a json object with its name and arguments within "
    "<tool_call></tool_call> XML tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n'
)

MESSAGE_LOOP_TEMPLATE = """\
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' }}
{%- generation %}
{%- if message.content %}{{- message.content }}{%- endif %}
{%- if message.tool_calls %}
{%- for tool_call in message.tool_calls %}
{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
{%- if loop.first and message.content %}{{- '\\n' }}{%- elif not loop.first %}{{- '\\n' }}{%- endif %}
{{- '<tool_call>\\n{\"name\": \"' + tool_call.name + '\", \"arguments\": ' }}
{%- if tool_call.arguments is string %}{{- tool_call.arguments }}
{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>' }}
{%- endgeneration %}
{{- '\\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""

_FULL_TOOL = "{{- '\\n' + (tool | tojson) }}"
_COMPACT_TOOL = (
    "{%- set fn = tool.function if tool.function is defined else tool %}"
    "{{- '\\n' + fn.name + '(' + ((fn.parameters.properties if fn.parameters is defined and "
    "fn.parameters.properties is defined else {}) | list | join(', ')) + ')' }}"
)


def chat_template(style: PromptStyle = "compact", system_prompt: str = COMPACT_SYSTEM_PROMPT) -> str:
    """The Jinja chat template. `compact`: `system_prompt` replaces the system message, tools are one line each."""
    if style == "full":
        system = "{%- set system_text = messages[0].content if messages[0].role == 'system' else '' %}"
        tool_line = _FULL_TOOL
    else:
        system = "{%- set system_text = " + json.dumps(system_prompt) + " %}"
        tool_line = _COMPACT_TOOL
    head = (
        system + "\n{%- if tools %}\n"
        "{{- '<|im_start|>system\\n' }}{%- if system_text %}{{- system_text + '\\n\\n' }}{%- endif %}\n"
        "{{- '" + _TOOLS_HEADER + "' }}\n"
        "{%- for tool in tools %}" + tool_line + "{%- endfor %}\n"
        "{{- '" + _TOOLS_FOOTER + "' }}\n"
        "{%- elif system_text %}\n{{- '<|im_start|>system\\n' + system_text + '<|im_end|>\\n' }}\n{%- endif %}\n"
    )
    return head + MESSAGE_LOOP_TEMPLATE


def retail_corpus(domain: Any, dialogues: Iterable[str] = ()) -> str:
    """Training text for the tokenizer: the database, tool schemas, policy texts and `dialogues`."""
    parts = [domain.db.model_dump_json(), json.dumps(domain.tool_schemas()), domain.policy(), COMPACT_SYSTEM_PROMPT]
    parts.extend(dialogues)
    return "\n".join(parts)


def train_tokenizer(
    corpus: str | Sequence[str],
    *,
    vocab_size: int = 2048,
    style: PromptStyle = "compact",
    system_prompt: str = COMPACT_SYSTEM_PROMPT,
    digit_group: int = 1,
    entities: Sequence[str] = (),
    isolate_spaces: bool = False,
) -> Any:
    """Train the BPE and wrap it as a `PreTrainedTokenizerFast` with the template.

    Runs of digits are cut into groups of `digit_group` from the left ("9523456873" -> "952", "345", "687",
    "3" with 3), and every group of up to that many digits is a token of its own. `eos_token` is `<|im_end|>`
    and `pad_token` `<|endoftext|>`, as in Qwen instruct models. Each of `entities` (database ids, see
    `sentinel_async.bootstrap.entities`) becomes one token wherever it stands as a whole word.

    `isolate_spaces` makes every space a token of its own, so a word is the same tokens after a space as after
    a quote: "my name is Mei" and `"first_name": "Mei"` then share `Mei`, where byte-level BPE writes ` M`+`ei`
    in the sentence and `M`+`ei` in the JSON, and copying a name means learning that mapping (about 24% more
    tokens on retail dialogues).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not 1 <= digit_group <= 4:
        raise ValueError(f"digit_group must be 1-4, not {digit_group}")
    tok = Tokenizer(models.BPE())
    digits = pre_tokenizers.Split(Regex(rf"[0-9]{{1,{digit_group}}}"), behavior="isolated")
    spaces = [pre_tokenizers.Split(" ", behavior="isolated")] if isolate_spaces else []
    tok.pre_tokenizer = pre_tokenizers.Sequence([digits, *spaces, pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [corpus] if isinstance(corpus, str) else list(corpus)
    texts += [" ".join(_digit_groups(digit_group))] * 4  # every group is frequent enough to be merged
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    tok.add_tokens([AddedToken(e, special=False, normalized=False, single_word=True) for e in entities])
    tokenizer_cls: Any = PreTrainedTokenizerFast
    return tokenizer_cls(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template(style, system_prompt),
    )


def _digit_groups(size: int) -> list[str]:
    """Every digit string of length 2..size (single digits are in the byte alphabet)."""
    return [str(n).zfill(width) for width in range(2, size + 1) for n in range(10**width)]


def save_tokenizer(tokenizer: Any, path: Path) -> None:
    """Write the tokenizer (with its chat template) to the folder `path`."""
    tokenizer.save_pretrained(str(path))


def load_tokenizer(path: Path) -> Any:
    """Load a tokenizer saved by `save_tokenizer`, offline."""
    from transformers import PreTrainedTokenizerFast

    tokenizer_cls: Any = PreTrainedTokenizerFast
    return tokenizer_cls.from_pretrained(str(path), local_files_only=True)


def render_ids(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> tuple[list[int], list[int]]:
    """A whole conversation's ids and its assistant mask (1 on tokens of assistant turns, `<|im_end|>` included)."""
    out = tokenizer.apply_chat_template(
        messages,
        tools=tools or None,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = [int(i) for i in out["input_ids"]]
    mask = [int(m) for m in out["assistant_masks"]]
    return ids, mask


def mask_runs(mask: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) of every run of 1s in a mask (`render_ids` gives one run per assistant message)."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i))
            start = None
    return runs
