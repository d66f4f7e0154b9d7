"""The bootstrap model: a small Qwen3 causal LM built from a config (random init, tied embeddings, fp32)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec


class ModelConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The shape of the bootstrap model. The vocabulary size comes from the tokenizer (rounded up to 64)."""

    hidden: int = 256
    layers: int = 6
    heads: int = 4
    kv_heads: int = 2
    head_dim: int | None = None
    """Width of each attention head; None: hidden / heads."""
    intermediate: int = 768
    context: int = 8192
    rope_theta: float = 10_000.0
    seed: int = 0


MODEL_SIZES: dict[str, ModelConfig] = {
    "toy": ModelConfig(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64),
    "tiny": ModelConfig(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384),
    "small": ModelConfig(hidden=256, layers=6, heads=4, kv_heads=2, intermediate=768),
}
"""Named sizes: `toy` (tests) about 50k parameters, `tiny` about 1M, `small` about 5M (with a ~2k vocabulary)."""


def padded_vocab(vocab_size: int, multiple: int = 64) -> int:
    """The embedding rows for a tokenizer of `vocab_size` tokens (added tokens included)."""
    return -(-vocab_size // multiple) * multiple


def build_model(config: ModelConfig, vocab_size: int, *, eos_token_id: int = 2, pad_token_id: int = 0) -> Any:
    """A randomly initialised fp32 `Qwen3ForCausalLM`, deterministic for `config.seed`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if config.hidden % config.heads or config.heads % config.kv_heads:
        raise ValueError(f"hidden {config.hidden}, heads {config.heads}, kv_heads {config.kv_heads} do not divide")
    qwen = Qwen3Config(
        vocab_size=padded_vocab(vocab_size),
        hidden_size=config.hidden,
        intermediate_size=config.intermediate,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        head_dim=config.head_dim or config.hidden // config.heads,
        max_position_embeddings=config.context,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model: Any = Qwen3ForCausalLM(qwen)
    model.eval()
    return model


def parameter_count(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += int(p.numel())
    return total


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No transformers progress bars for a tiny local save or load."""
    from transformers.utils import logging

    hf_logging: Any = logging
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def save_model(model: Any, path: Any) -> None:
    """Write `config.json` and `model.safetensors` to the folder `path`."""
    with _quiet_transformers():
        model.save_pretrained(str(path))


def load_model(path: Any) -> Any:
    """Load a model saved by `save_model` (fp32, eval mode, offline)."""
    from transformers import Qwen3ForCausalLM

    with _quiet_transformers():
        model: Any = Qwen3ForCausalLM.from_pretrained(str(path), local_files_only=True)
    model.eval()
    return model
