"""The bootstrap's whole configuration, its named sizes and its fingerprint (light: no torch)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

import msgspec

from sentinel_async.bootstrap.demos import DemoConfig
from sentinel_async.bootstrap.model import MODEL_SIZES, ModelConfig
from sentinel_async.bootstrap.sft import SFTConfig
from sentinel_async.bootstrap.tokenizer import PromptStyle
from sentinel_async.errors import SentinelError
from sentinel_async.prompt_view import ContextWindow

if TYPE_CHECKING:
    from sentinel_async.prompt_view import ToolView

FORMAT_VERSION = 5
"""Bumped when the build changes in a way the config does not show (cached results are then rebuilt): the
build's code, a changed default, a removed field. A new field whose default keeps the old computation needs no
bump: a build recorded before the field existed is still found (`cache.find_equivalent`)."""

Size = Literal["toy", "tiny", "small", "tiny-names", "tiny-kinds", "tiny-kind-drill", "tiny-kinds-said"]
ToolViewName = Literal["raw", "lines"]


class BootstrapConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tokenizer, model, demonstrations and training of one bootstrap policy."""

    size: str = "tiny"
    vocab_size: int = 2048
    digit_group: int = 1
    """Digits per token in numbers (see `sentinel_async.bootstrap.tokenizer`)."""
    isolate_spaces: bool = True
    """Every space its own token, so a name copies as the same tokens (see `train_tokenizer`)."""
    entity_tokens: bool = False
    """Every database id one token (see `sentinel_async.bootstrap.entities`)."""
    permute_names: bool = False
    """Rename customers in every training sample at random (`entities.name_token_groups`), so a name can only
    be copied from what the customer said, never remembered from the training customers."""
    spell_names: bool = False
    """Names as copied text, not tokens (`sentinel_async.bootstrap.names`): the tokenizer is trained with every
    customer name removed, so a name is several pieces shared with other words, and each demonstration is used
    `name_copies` times, each renamed at random (as text) to other names of the database (and `made_up_names`).
    Name tokens are then not renamed by `permute_names`."""
    name_copies: int = 3
    """Renamed copies of each demonstration with `spell_names`."""
    made_up_names: int = 500
    """With `spell_names`, also rename customers to this many made-up names per part (`names.synthetic_names`),
    in the demonstrations and the slot-copy exercises. Measured at 500: the model copies a name's first piece and
    then writes a made-up-sounding rest ("Kova" for Kovacs), name + zip 0/35; `tiny-names` uses 0."""
    copy_addresses: bool = False
    """Addresses as copied values: renamed per sample like names (`entities.address_token_groups`: street
    names, street types, city words, states) and drilled in the slot-copy exercises (`address1`, `city`,
    `state`), so a new address can only be written by copying what the customer said. Measured on `tiny`: address
    changes still 0 of 12 (another street, the same for every customer), test pass^1 0.075 as without it; and
    three draws of four did not learn to copy by step 1,000. Off by default."""
    permute_payment_kinds: bool = False
    """Permute payment kinds (`credit_card`, `paypal`, `gift_card`) at random in every demonstration, in its ids
    and tool results (`ids.PaymentKindRenaming`), so a payment method's kind can only be copied from the
    conversation, as its digits are. Without it the kind is partly a prior: `tiny-names` writes the right digits
    under the wrong kind in 9 of its 40 test tasks. `tiny-kinds` turns it on."""
    say_payment_kinds: bool = False
    """With `permute_payment_kinds`, the customer also names each payment method by its new kind (`my gift card
    (gift_card_7644869)` rather than `my PayPal account (gift_card_7644869)`): words and id agree, as they do in
    the benchmark's conversations, while the kinds stay balanced. `tiny-kinds-said` turns it on."""
    prompt_style: PromptStyle = "compact"
    tool_view: ToolViewName = "raw"
    """How the policy reads tool results: "raw" (tau2's JSON) or "lines" (`retail_lines`: one line per item or
    variant, the customer's description before its ids). Used in training and in every prompt."""
    window: ContextWindow | None = None
    """What of a long conversation the policy is shown (`ContextWindow`); None: all of it. With a window, every
    assistant turn of a demonstration is trained on the prompt it would be shown (`demos.window_samples`)."""
    model: ModelConfig = msgspec.field(default_factory=lambda: MODEL_SIZES["tiny"])
    demos: DemoConfig = msgspec.field(default_factory=DemoConfig)
    sft: SFTConfig = msgspec.field(default_factory=SFTConfig)

    def __post_init__(self) -> None:
        if self.say_payment_kinds and not self.permute_payment_kinds:
            raise ValueError("say_payment_kinds renames the words of permuted kinds: set permute_payment_kinds too")


NAMED: dict[str, BootstrapConfig] = {
    # Smoke tests and CI: builds in seconds, plays episodes, learns nothing.
    "toy": BootstrapConfig(
        size="toy",
        tool_view="lines",
        window=ContextWindow(head=6, tail=6),
        permute_names=True,
        vocab_size=600,
        digit_group=1,
        model=MODEL_SIZES["toy"],
        demos=DemoConfig(episodes_per_task=1, max_tasks=4),
        sft=SFTConfig(lr=3e-3, warmup_steps=1, batch_tokens=4096, max_steps=4, max_minutes=1.0),
    ),
    "tiny": BootstrapConfig(
        size="tiny",
        tool_view="lines",
        window=ContextWindow(head=6, tail=6),
        permute_names=True,
        model=MODEL_SIZES["tiny"],
        demos=DemoConfig(episodes_per_task=2, general_tasks=1500),
        sft=SFTConfig(
            lr=3e-3,
            warmup_steps=20,
            batch_tokens=8192,
            max_steps=3_600,
            max_minutes=45.0,
            slot_steps=700,
            slot_hard_from=500,
            slot_fraction=0.1,
            slot_values_per_call=3,
            slot_learnt_below=0.3,
            slot_redraws=3,
            slot_redraw_after=1_000,
        ),
    ),
    "small": BootstrapConfig(
        size="small",
        tool_view="lines",
        window=ContextWindow(head=6, tail=6),
        permute_names=True,
        model=MODEL_SIZES["small"],
        demos=DemoConfig(episodes_per_task=2, general_tasks=1500),
        sft=SFTConfig(
            lr=2e-3,
            warmup_steps=20,
            batch_tokens=8192,
            max_steps=100_000,
            max_minutes=60.0,
            slot_steps=700,
            slot_hard_from=500,
            slot_fraction=0.1,
            slot_values_per_call=3,
            slot_learnt_below=0.3,
        ),
    ),
}
"""The named configurations (`sentinel bootstrap --size`, `policy.size`)."""
NAMED["tiny-names"] = msgspec.structs.replace(NAMED["tiny"], size="tiny-names", spell_names=True, made_up_names=0)
"""`tiny` with names as copied text (`spell_names`; measured in docs/bootstrap-log.md)."""
NAMED["tiny-kinds"] = msgspec.structs.replace(NAMED["tiny-names"], size="tiny-kinds", permute_payment_kinds=True)
"""`tiny-names` with payment kinds as copied text too (`permute_payment_kinds`)."""
NAMED["tiny-kind-drill"] = msgspec.structs.replace(
    NAMED["tiny-kinds"],
    size="tiny-kind-drill",
    sft=msgspec.structs.replace(NAMED["tiny-kinds"].sft, slot_kind_contest=0.5),
)
"""`tiny-kinds` with slot-copy exercises where only the payment kind tells the said values apart
(`SFTConfig.slot_kind_contest`). Measured: no better than `tiny-kinds` (docs/bootstrap-log.md)."""
NAMED["tiny-kinds-said"] = msgspec.structs.replace(NAMED["tiny-kinds"], size="tiny-kinds-said", say_payment_kinds=True)
"""`tiny-kinds` with the customer's words for each payment method permuted with its kind (`say_payment_kinds`)."""


def bootstrap_config(
    size: Size | str = "tiny", *, minutes: float | None = None, steps: int | None = None, seed: int | None = None
) -> BootstrapConfig:
    """The configuration of a named size, optionally with another training time cap, step budget or seed (the
    model's initialisation and the training's data order; the demonstrations stay the same)."""
    if size not in NAMED:
        raise SentinelError(f"unknown bootstrap size {size!r}; expected one of {', '.join(NAMED)}")
    if steps is not None and steps < 1:
        raise SentinelError(f"the bootstrap's step budget must be at least 1, got {steps}")
    config = NAMED[size]
    sft = config.sft
    if minutes is not None:
        sft = msgspec.structs.replace(sft, max_minutes=float(minutes))
    if steps is not None:
        sft = msgspec.structs.replace(sft, max_steps=steps)
    model = config.model
    if seed is not None:
        sft = msgspec.structs.replace(sft, seed=seed)
        model = msgspec.structs.replace(model, seed=seed)
    return msgspec.structs.replace(config, sft=sft, model=model)


def resolve_tool_view(name: str) -> ToolView | None:
    """The `ToolView` a configuration names (None for "raw")."""
    if name == "raw":
        return None
    if name == "lines":
        from sentinel_async.tools.retail.views import retail_lines

        return retail_lines
    raise SentinelError(f"unknown tool view {name!r}; expected raw or lines")


def fingerprint(config: BootstrapConfig) -> str:
    """A short hash of the configuration (and `FORMAT_VERSION`): the cache folder's name."""
    data = msgspec.json.encode({"format": FORMAT_VERSION, "config": config}, order="deterministic")
    return hashlib.sha256(data).hexdigest()[:16]
