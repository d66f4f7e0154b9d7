"""Tiny local tokenizer and Qwen3 model for tests: built in-process in about a second, no downloads.

The tokenizer is a byte-level BPE trained on a small built-in retail corpus, wrapped as a transformers
`PreTrainedTokenizerFast` with a Qwen-style chat template (tools, `<tool_call>`, `<tool_response>`, and
`{% generation %}` markers so `return_assistant_tokens_mask=True` works). Imports torch/transformers lazily.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentinel_async.bootstrap.tokenizer import MESSAGE_LOOP_TEMPLATE

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Control tokens (special: dropped by `decode(skip_special_tokens=True)`)."""

MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")
"""Added tokens that are not special, as in Qwen's tokenizer: they survive `skip_special_tokens=True`."""

QWEN_CHAT_TEMPLATE = (
    """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' }}
{{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
{{- '{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
"""
    + MESSAGE_LOOP_TEMPLATE
)
"""A Qwen2.5-style chat template with tool support, written for these tests."""

_TOOL_NAMES = ("get_order_details", "get_user_details", "cancel_pending_order", "find_user_id_by_email")


def tiny_corpus() -> str:
    """A few KB of retail-flavoured text: dialogue, tool calls as JSON, digits, tool schemas."""
    lines = [
        "Hi! How can I help you today? I want to cancel my order, please.",
        "Could you give me your email address so I can find your account?",
        "Sure, my email is yusuf.rossi@example.com and my zip code is 19122.",
        "Your order #W2378156 is pending. Do you want to cancel it? Yes, please cancel it.",
        "The order was cancelled and the refund of 243.50 will go to your gift card.",
        "I would like to exchange the mechanical keyboard for one with clicky switches.",
        "The item is delivered; I can return it or exchange it for a similar product variant.",
        "Thank you, that is all. You are welcome, have a great day!",
    ]
    for i, name in enumerate(_TOOL_NAMES):
        args = {"order_id": f"#W{1000000 + 7919 * i}", "user_id": f"user_{i}_{31 * i}"}
        lines.append(json.dumps({"name": name, "arguments": args}))
        lines.append(
            json.dumps(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": "Look up.",
                        "parameters": {
                            "type": "object",
                            "properties": {"order_id": {"type": "string"}},
                            "required": ["order_id"],
                        },
                    },
                }
            )
        )
    lines.append(" ".join(str(n) for n in range(100)))
    lines.append("{}[]:,\"'#_-.@!?0123456789 \n\t")
    return "\n".join(lines * 3)


def build_tiny_tokenizer(vocab_size: int = 512, corpus: str | None = None, save_dir: Path | None = None) -> Any:
    """Train a byte-level BPE and wrap it as a `PreTrainedTokenizerFast` with `QWEN_CHAT_TEMPLATE`.

    Ids 0-2 are the special tokens in `SPECIAL_TOKENS` order; `MARKUP_TOKENS` come after the vocabulary.
    `eos_token` is `<|im_end|>` and `pad_token` is `<|endoftext|>`, as in Qwen instruct models.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus if corpus is not None else tiny_corpus()], trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    tokenizer_cls: Any = PreTrainedTokenizerFast
    wrapped = tokenizer_cls(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    if save_dir is not None:
        wrapped.save_pretrained(str(save_dir))
    return wrapped


def build_tiny_qwen3(
    vocab_size: int, *, hidden_size: int = 48, num_layers: int = 2, seed: int = 0, eos_token_id: int = 2
) -> Any:
    """A randomly initialised fp32 `Qwen3ForCausalLM` (tied embeddings), deterministic for a given seed."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=0,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = Qwen3ForCausalLM(config)
    model.eval()
    return model
