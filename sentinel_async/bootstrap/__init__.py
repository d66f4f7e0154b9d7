"""The bootstrap policy: a domain tokenizer, a small Qwen3 model and SFT on scripted demonstrations, cached.

`load_or_build(bootstrap_config("small"))` returns a `Bootstrap` (tokenizer, model, manifest), building it
the first time; `bootstrap_policy(b)` makes it a `TokenPolicy`. torch and transformers load only when needed.
"""

from sentinel_async.bootstrap.cache import (
    Bootstrap,
    DemoStats,
    Manifest,
    cache_path,
    cache_root,
    load,
    load_bootstrap_models,
    load_or_build,
)
from sentinel_async.bootstrap.config import BootstrapConfig, bootstrap_config, fingerprint
from sentinel_async.bootstrap.demos import DEFAULT_INTENT_WEIGHTS, DemoConfig, DemoSet, Sample, TaskSource
from sentinel_async.bootstrap.model import MODEL_SIZES, ModelConfig
from sentinel_async.bootstrap.policy import ContextOverflowError, bootstrap_policy
from sentinel_async.bootstrap.sft import SFTConfig, SFTMetrics
from sentinel_async.bootstrap.tokenizer import COMPACT_SYSTEM_PROMPT, PromptStyle

__all__ = [
    "COMPACT_SYSTEM_PROMPT",
    "DEFAULT_INTENT_WEIGHTS",
    "MODEL_SIZES",
    "Bootstrap",
    "BootstrapConfig",
    "ContextOverflowError",
    "DemoConfig",
    "DemoSet",
    "DemoStats",
    "Manifest",
    "ModelConfig",
    "PromptStyle",
    "SFTConfig",
    "SFTMetrics",
    "Sample",
    "TaskSource",
    "bootstrap_config",
    "bootstrap_policy",
    "cache_path",
    "cache_root",
    "fingerprint",
    "load",
    "load_bootstrap_models",
    "load_or_build",
]
