"""The bootstrap's whole configuration, its named sizes and its fingerprint (light: no torch)."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from sentinel_async.bootstrap.demos import DemoConfig
from sentinel_async.bootstrap.model import MODEL_SIZES, ModelConfig
from sentinel_async.bootstrap.sft import SFTConfig
from sentinel_async.bootstrap.tokenizer import PromptStyle
from sentinel_async.errors import SentinelError

FORMAT_VERSION = 1
"""Bumped when the build changes in a way the config does not show (cached results are then rebuilt)."""

Size = Literal["tiny", "small"]


class BootstrapConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tokenizer, model, demonstrations and training of one bootstrap policy."""

    size: str = "tiny"
    vocab_size: int = 2048
    prompt_style: PromptStyle = "compact"
    model: ModelConfig = msgspec.field(default_factory=lambda: MODEL_SIZES["tiny"])
    demos: DemoConfig = msgspec.field(default_factory=DemoConfig)
    sft: SFTConfig = msgspec.field(default_factory=SFTConfig)


_SFT_BY_SIZE: dict[str, SFTConfig] = {
    "tiny": SFTConfig(lr=3e-3, warmup_steps=10, batch_tokens=8192, max_minutes=5.0),
    "small": SFTConfig(lr=2e-3, warmup_steps=10, batch_tokens=8192, max_minutes=10.0),
}


def bootstrap_config(size: Size | str = "tiny", *, minutes: float | None = None) -> BootstrapConfig:
    """The default configuration of a named size, optionally with another training time budget."""
    if size not in MODEL_SIZES:
        raise SentinelError(f"unknown bootstrap size {size!r}; expected one of {', '.join(MODEL_SIZES)}")
    sft = _SFT_BY_SIZE[size]
    if minutes is not None:
        sft = msgspec.structs.replace(sft, max_minutes=minutes)
    return BootstrapConfig(size=size, model=MODEL_SIZES[size], sft=sft)


def fingerprint(config: BootstrapConfig) -> str:
    """A short hash of the configuration (and `FORMAT_VERSION`): the cache folder's name."""
    data = msgspec.json.encode({"format": FORMAT_VERSION, "config": config}, order="deterministic")
    return hashlib.sha256(data).hexdigest()[:16]
