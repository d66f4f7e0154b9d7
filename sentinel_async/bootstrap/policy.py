"""The bootstrap model as a ready `TokenPolicy` (local chat template + in-process generation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.clients.token_client import GenerationResult, SamplingParams, TokenPolicy
from sentinel_async.errors import SentinelError

DEFAULT_SAMPLING = SamplingParams(max_tokens=384, temperature=1.0)
"""Sampling for rollouts (the stop ids are filled in by `TokenPolicy`)."""


class ContextOverflowError(SentinelError):
    """Raised when a prompt leaves no room to generate within the model's context length."""


class ContextLimitedGenerator:
    """Wraps a `TokenGenerator`: caps `max_tokens` to the context left, and refuses a prompt that fills it.

    A refusal is a `SentinelError`, so the episode ends with `agent_error` instead of crashing the run.
    """

    def __init__(self, inner: Any, context: int) -> None:
        self.inner = inner
        self.context = context

    @property
    def weights_version(self) -> int | None:
        version: int | None = getattr(self.inner, "weights_version", None)
        return version

    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationResult:
        room = self.context - len(prompt_ids)
        if room <= 0:
            raise ContextOverflowError(f"the prompt has {len(prompt_ids)} tokens; the context is {self.context}")
        if params.max_tokens > room:
            params = msgspec.structs.replace(params, max_tokens=room)
        result: GenerationResult = await self.inner.generate(prompt_ids, params)
        return result

    async def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Forward new weights to the wrapped generator."""
        await self.inner.update_weights(state_dict, version)


def bootstrap_policy(
    bootstrap: Any,
    *,
    sampling: SamplingParams | None = None,
    num_threads: int | None = None,
    seed: int = 0,
    policy_version: int = 0,
    max_batch: int = 1,
    prefix_cache: int = 16,
) -> TokenPolicy:
    """A `TokenPolicy` over a built `Bootstrap` (its model is shared, not copied); `max_batch` concurrent
    requests are decoded together; `prefix_cache` recent generations' KV caches are reused by the next turn."""
    from sentinel_async.agents.clients.token_client import TransformersGenerator

    generator = TransformersGenerator(
        bootstrap.model,
        num_threads=num_threads,
        seed=seed,
        max_batch=max_batch,
        pad_token_id=bootstrap.tokenizer.pad_token_id or 0,
        prefix_cache=prefix_cache,
    )
    context = int(bootstrap.manifest.config.model.context)
    return TokenPolicy(
        bootstrap.tokenizer,
        ContextLimitedGenerator(generator, context),
        sampling=sampling or DEFAULT_SAMPLING,
        policy_version=policy_version,
        view=bootstrap.prompt_view,
    )
