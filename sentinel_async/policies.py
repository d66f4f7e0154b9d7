"""Building the trained policy of a run: tokenizer, a rollout model and a training model, at a version."""

from __future__ import annotations

from typing import Any

import msgspec

from sentinel_async.prompt_view import PromptView
from sentinel_async.run_config import PolicyConfig


class LoadedPolicy(msgspec.Struct, kw_only=True):
    """The rollout policy (generation, in-process weights) and the separate model the trainer updates."""

    tokenizer: Any
    policy: Any
    train_model: Any
    version: int


def _models(config: PolicyConfig, seed: int) -> tuple[Any, Any, Any, PromptView]:
    """(tokenizer, rollout model, training model, prompt view) at version 0."""
    if config.kind == "tiny-random":
        from sentinel_async.testing.tiny_models import build_tiny_qwen3, build_tiny_tokenizer

        tokenizer = build_tiny_tokenizer()

        def make() -> Any:
            return build_tiny_qwen3(len(tokenizer), seed=seed, eos_token_id=tokenizer.eos_token_id)

        return tokenizer, make(), make(), PromptView()
    from sentinel_async.bootstrap import load_bootstrap_models

    return load_bootstrap_models(
        size=config.size,
        cache_dir=config.cache_dir,
        minutes=config.build_minutes,
        steps=config.build_steps,
        seed=config.build_seed,
    )


def resolve_device(name: str) -> Any:
    """A `torch.device` from a configured name; "auto" is CUDA when available, else the CPU."""
    import torch

    from sentinel_async.errors import SentinelError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SentinelError(f"policy.device is {name!r} but torch sees no CUDA device; use policy.device=cpu")
    return device


def load_policy(config: PolicyConfig, *, seed: int, checkpoint: str | None = None, version: int = 0) -> LoadedPolicy:
    """The run's policy at `version`: from `checkpoint` (a full-model checkpoint folder) when resuming."""
    from transformers.utils import logging as transformers_logging

    from sentinel_async.agents.clients import SamplingParams, TokenPolicy, TransformersGenerator

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per checkpoint save
    tokenizer, rollout_model, train_model, view = _models(config, seed)
    if checkpoint is not None:
        from transformers import AutoModelForCausalLM

        rollout_model = AutoModelForCausalLM.from_pretrained(checkpoint)
        train_model = AutoModelForCausalLM.from_pretrained(checkpoint)
    device = resolve_device(config.device)
    rollout_model, train_model = rollout_model.to(device), train_model.to(device)
    generator = TransformersGenerator(
        rollout_model,
        num_threads=config.num_threads,
        seed=seed,
        weights_version=version,
        max_batch=config.max_batch,
        pad_token_id=tokenizer.pad_token_id or 0,
        prefix_cache=config.prefix_cache,
    )
    # No per-request seed: the generator draws one per call from its own seeded stream, so a group's episodes
    # explore differently while the run stays reproducible.
    sampling = SamplingParams(max_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p)
    policy = TokenPolicy(tokenizer, generator, sampling=sampling, policy_version=version, view=view)
    return LoadedPolicy(tokenizer=tokenizer, policy=policy, train_model=train_model, version=version)


def with_temperature(policy: Any, temperature: float | None) -> Any:
    """`policy` (a `TokenPolicy`) sampling at `temperature` instead: a view on the same generator and weights.

    None, or the policy's own temperature, returns `policy` itself.
    """
    from sentinel_async.agents.clients import TokenPolicy

    if temperature is None or temperature == policy.sampling.temperature:
        return policy
    sampling = msgspec.structs.replace(policy.sampling, temperature=temperature)
    return TokenPolicy(
        policy.tokenizer,
        policy.generator,
        sampling=sampling,
        validate_tools=policy.validate_tools,
        policy_version=policy.policy_version,
        chat_template_kwargs=policy.chat_template_kwargs,
        view=policy.view,
    )
