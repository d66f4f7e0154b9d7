"""The configuration of a training run (`sentinel run`): one typed struct, loadable from TOML, JSON or flags."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from sentinel_async.agents.pool import PoolConfig
from sentinel_async.agents.rollout_worker import RolloutConfig
from sentinel_async.agents.solver.batching import BatchingConfig
from sentinel_async.agents.solver.trainer import TrainerConfig
from sentinel_async.errors import SentinelError


class PolicyConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The policy being trained and how it generates.

    `kind`: "bootstrap" is the supervised CPU policy built (and cached) on first use; "tiny-random" is a
    randomly initialised tiny model (mechanics only: it earns no reward).
    """

    kind: Literal["bootstrap", "tiny-random"] = "bootstrap"
    size: str = "tiny"
    build_seed: int | None = None
    """The bootstrap build's seed (`sentinel bootstrap --seed`): another seed is another build of the size."""
    build_steps: int | None = None
    """The bootstrap build's step budget (`sentinel bootstrap --steps`); None: the size's own."""
    build_minutes: float | None = None
    """The bootstrap build's training time cap (`sentinel bootstrap --minutes`); None: the size's own."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 384
    num_threads: int | None = 1
    cache_dir: str | None = None
    device: str = "cpu"
    """Where the rollout and training models live: "cpu", "cuda", "cuda:1", ... or "auto" (CUDA when present)."""
    max_batch: int = 1
    """Concurrent generation requests decoded together (in-process generator); 1 decodes one at a time.
    Batching pays on short prompts (3.3x at 100-400 tokens) but not at retail lengths (0.62x at 600-3,000 tokens:
    padding and per-row attention dominate on a CPU): `benchmarks/bench_generation.py`."""
    prefix_cache: int = 16
    """KV caches kept from recent generations (one-at-a-time decoding): the next turn of a conversation then
    prefills only its new messages instead of the whole conversation; 0 turns reuse off."""


class ProposerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """`mode`: "targeted" (SENTINEL), "general" (untargeted synthetic tasks) or "off" (the train split only)."""

    mode: Literal["targeted", "general", "off"] = "targeted"
    candidates_per_pattern: int = 4
    difficulty: Literal["stress", "plain"] = "stress"
    """Targeted tasks as the recipes write them (`stress`) or their first request alone, without stressors
    (`plain`: for a policy that fails the plain tasks already)."""
    aim_at_tool: bool = True
    """Aim targeted tasks at the request a pattern's tool fulfils (`targets.focus`); false: the whole recipe
    family of the pattern's category, whatever the tool."""


class EvalSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Held-out evaluation during the run: before training (`initial`), every `every` policy versions, and the
    final policy."""

    split: Literal["train", "test", "base"] = "test"
    every: int = 2
    initial: bool = True
    trials: int = 1
    max_tasks: int | None = None
    concurrency: int = 8
    max_steps: int = 100
    """Messages per evaluation episode: tau2's own limit, so held-out numbers compare with tau2's."""
    temperature: float | None = 0.0
    """Sampling temperature of evaluation episodes (0: greedy, the usual way to report a policy); None samples
    like the rollouts (`policy.temperature`)."""


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a run needs; recorded whole in its `RunStarted` event."""

    run_id: str = "run"
    domain: str = "retail"
    seed: int = 0
    policy: PolicyConfig = PolicyConfig()
    rollout: RolloutConfig = RolloutConfig(group_size=8)
    """Eight episodes per task: the CPU bootstrap is all-or-nothing on most tasks, and a group teaches only when
    its rewards differ (measured: with groups of 4 and 2 groups per batch, 15 of 16 groups had none)."""
    pool: PoolConfig = PoolConfig()
    proposer: ProposerSettings = ProposerSettings()
    batching: BatchingConfig = BatchingConfig(groups_per_batch=1, progress_weight=0.5, max_staleness=2)
    """Train on every group whose rewards differ as soon as it is complete, rather than waiting for a second; the
    training reward adds half the share of gold actions matched, so groups that all fail still teach which
    attempts got further (measured: with tau2's reward alone, 16 of 16 groups of the CPU bootstrap had no
    variance). Episodes up to two versions behind are kept (the objective clips their ratio to the rollout
    log-probs): with one, the default run dropped 4 of its 16 groups as stale, since a group's eight episodes
    span an update or two."""
    trainer: TrainerConfig = TrainerConfig(lr=1e-4)
    evaluation: EvalSettings = EvalSettings()
    pattern_every: int = 8


def load_run_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A RunConfig from a TOML or JSON file (or the defaults), with dotted-key overrides applied on top."""
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise SentinelError(f"no configuration file at {file}")
        try:
            data = tomllib.loads(file.read_text()) if file.suffix == ".toml" else msgspec.json.decode(file.read_bytes())
        except (tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
            raise SentinelError(f"cannot read the configuration {file}: {exc}") from None
    for key, value in (overrides or {}).items():
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    try:
        config = msgspec.convert(_over_defaults(RunConfig(), data, ""), RunConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise SentinelError(f"invalid run configuration: {exc}") from None
    return _consistent(config, explicit_objective_temperature="temperature" in _get(data, "trainer.objective"))


def _over_defaults(default: msgspec.Struct, data: dict[str, Any], path: str) -> dict[str, Any]:
    """`data` laid over `default`'s values table by table: a table that names some of a section's settings keeps
    the run's defaults for the others (`--set rollout.rounds=8` keeps the run's eight episodes per group, not the
    section's own default). A name that is no setting is refused, with the settings it could have meant."""
    out: dict[str, Any] = msgspec.to_builtins(default)
    names = {field.encode_name: field.name for field in msgspec.structs.fields(default)}
    for key, value in data.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise SentinelError(
                f"unknown run setting {path + key!r}; {path.rstrip('.') or 'the top level'} has: {known}"
            )
        current = getattr(default, names[key])
        if isinstance(current, msgspec.Struct) and isinstance(value, dict):
            out[key] = _over_defaults(current, value, f"{path}{key}.")
        else:
            out[key] = value
    return out


def _get(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        value = data.get(part)
        data = value if isinstance(value, dict) else {}
    return data


def _consistent(config: RunConfig, *, explicit_objective_temperature: bool) -> RunConfig:
    """The GRPO ratio compares against log-probs sampled at `policy.temperature`: the objective uses the same
    temperature unless set explicitly, and a contradictory explicit setting is an error."""
    objective = config.trainer.objective
    if objective.temperature == config.policy.temperature:
        return config
    if explicit_objective_temperature:
        raise SentinelError(
            f"trainer.objective.temperature ({objective.temperature}) differs from policy.temperature "
            f"({config.policy.temperature}); the rollout log-probs are taken at the policy's temperature, so set "
            "only policy.temperature"
        )
    objective = msgspec.structs.replace(objective, temperature=config.policy.temperature)
    trainer = msgspec.structs.replace(config.trainer, objective=objective)
    return msgspec.structs.replace(config, trainer=trainer)
