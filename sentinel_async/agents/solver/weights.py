"""Getting new weights to the rollout engine, and checking which weights produced an episode.

`InProcessSync` loads the trainer's (merged) state dict into an in-process generator or `TokenPolicy`.
`VLLMLoRASync` saves nothing itself: it loads the step's LoRA adapter folder into a vLLM server under the
versioned name `policy-v{version}` through `/v1/load_lora_adapter`, then points the generator at it, so
every later completion is stamped with that version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from sentinel_async.agents.clients.token_client import TokenPolicy, VLLMCompletionsGenerator, WeightUpdatable
from sentinel_async.agents.solver.samples import EpisodeTrace

DropReason = Literal["stale", "version_mismatch"]


def check_versions(
    trace: EpisodeTrace, current_version: int, max_staleness: int, *, allow_mixed: bool = True
) -> DropReason | None:
    """Why an episode must not be trained on under `current_version`, or None when it may.

    A mismatch: a turn without a recorded version, a turn older than the version the episode started
    under, a version the trainer has not produced yet, or (with `allow_mixed=False`) turns of several
    versions. Stale: the oldest turn is more than `max_staleness` versions behind `current_version`.
    """
    versions = trace.turn_versions
    if any(v is None for v in versions):
        return "version_mismatch"
    known = [v for v in versions if v is not None]
    if any(v < trace.started_version or v > current_version for v in known):
        return "version_mismatch"
    if trace.started_version > current_version:
        return "version_mismatch"
    if not allow_mixed and len(set(known)) > 1:
        return "version_mismatch"
    oldest = min(known, default=trace.started_version)
    if current_version - oldest > max_staleness:
        return "stale"
    return None


class WeightSync(Protocol):
    """Makes the rollout engine serve a new policy version."""

    async def push(self, version: int, *, state_dict: Mapping[str, Any] | None, adapter_path: str | None) -> None:
        """Serve `version`, from a full state dict (in-process) or a saved LoRA adapter folder (vLLM)."""
        ...


class InProcessSync:
    """Pushes a state dict into a `TokenPolicy` (bumping its version) or any `WeightUpdatable` generator."""

    def __init__(self, target: TokenPolicy | WeightUpdatable) -> None:
        self.target = target

    async def push(self, version: int, *, state_dict: Mapping[str, Any] | None, adapter_path: str | None) -> None:
        if state_dict is None:
            raise ValueError("in-process weight sync needs the trainer's state dict")
        await self.target.update_weights(state_dict, version)


class VLLMLoRASync:
    """Loads each version's adapter into a vLLM server as `name_format.format(version=...)` and switches to it.

    With `unload_previous` the adapter of the version before is unloaded once the new one serves.
    """

    def __init__(
        self,
        generator: VLLMCompletionsGenerator,
        *,
        name_format: str = "policy-v{version}",
        unload_previous: bool = False,
    ) -> None:
        self.generator = generator
        self.name_format = name_format
        self.unload_previous = unload_previous
        self.loaded: list[str] = []

    def adapter_name(self, version: int) -> str:
        return self.name_format.format(version=version)

    async def push(self, version: int, *, state_dict: Mapping[str, Any] | None, adapter_path: str | None) -> None:
        if adapter_path is None:
            raise ValueError("vLLM weight sync needs a saved LoRA adapter folder (train with LoRA)")
        name = self.adapter_name(version)
        await self.generator.load_lora_adapter(name, adapter_path)
        self.generator.use_model(name, version)
        if self.unload_previous and self.loaded:
            await self.generator.unload_lora_adapter(self.loaded.pop())
        self.loaded.append(name)
