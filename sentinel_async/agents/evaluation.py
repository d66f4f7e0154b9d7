"""Evaluating a policy on a domain's split: trials per task, pass^k, everything recorded in the log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from sentinel_async.agents.episode import EpisodeConfig, EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.rollout import PolicyFactory, UserFactory, plan_trials, run_episodes
from sentinel_async.errors import SentinelError
from sentinel_async.events import EvaluationFinished, RunStarted, TaskRegistered
from sentinel_async.metrics import PassKReport, pass_k_report
from sentinel_async.store import NO_STREAM, EventStore
from sentinel_async.tools.base import Domain, Split, TaskSpec
from sentinel_async.tools.retail.evaluation import Evaluator

PolicyKind = Literal["expert", "endpoint", "bootstrap"]
UserKind = Literal["scripted", "llm"]


class EvalConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What `sentinel eval` runs."""

    domain: str = "retail"
    split: Split = "test"
    trials: int = 1
    concurrency: int = 8
    seed: int = 0
    max_steps: int = 100
    max_errors: int = 10
    task_ids: list[str] = msgspec.field(default_factory=list)
    policy: PolicyKind = "expert"
    model_url: str | None = None
    model: str | None = None
    user: UserKind = "scripted"
    user_model_url: str | None = None
    user_model: str | None = None
    temperature: float = 0.0
    run_id: str = "eval"
    size: str = "tiny"
    """The bootstrap size (policy "bootstrap")."""
    build_seed: int | None = None
    """The bootstrap build's seed (`sentinel bootstrap --seed`; policy "bootstrap")."""
    build_steps: int | None = None
    """The bootstrap build's step budget (`sentinel bootstrap --steps`; policy "bootstrap")."""
    build_minutes: float | None = None
    """The bootstrap build's training time cap (`sentinel bootstrap --minutes`; policy "bootstrap")."""
    checkpoint: str | None = None
    """A run's checkpoint folder to evaluate instead of the bootstrap weights (policy "bootstrap")."""


class EvalResult(msgspec.Struct, frozen=True, kw_only=True):
    """pass^k over the split, and every episode's reward."""

    report: PassKReport
    rewards: dict[str, list[float]]
    terminations: dict[str, int]
    episode_ids: list[str]


def select_tasks(domain: Domain, config: EvalConfig) -> list[TaskSpec]:
    tasks = domain.tasks(config.split)
    if config.task_ids:
        wanted = set(config.task_ids)
        tasks = [t for t in tasks if t.id in wanted]
        missing = wanted - {t.id for t in tasks}
        if missing:
            raise SentinelError(f"no tasks {sorted(missing)} in the {config.split} split of {domain.name}")
    if not tasks:
        raise SentinelError(f"the {config.split} split of {domain.name} has no tasks")
    return tasks


async def register_tasks(store: EventStore, domain: Domain, tasks: Sequence[TaskSpec], split: str) -> None:
    """Record each benchmark task once (a task's stream is `task-<domain>-<id>`)."""
    for task in tasks:
        stream = f"task-{domain.name}-{task.id}"
        if store.stream_version(stream) == 0:
            spec = msgspec.to_builtins(task)
            event = TaskRegistered(task_id=task.id, domain=domain.name, source="benchmark", split=split, spec=spec)
            await store.append(stream, [event], expected_version=NO_STREAM)


async def evaluate(
    config: EvalConfig,
    domain: Domain,
    store: EventStore,
    *,
    make_policy: PolicyFactory,
    make_user: UserFactory,
    policy_version: int = 0,
    on_done: Callable[[EpisodeOutcome], None] | None = None,
    record_run: bool = True,
) -> EvalResult:
    """Run `trials` episodes of every selected task, record them and the pass^k summary, return the result.

    Episodes are recorded with purpose "eval" (the Controller and the Solver ignore them). `record_run=False`
    skips the RunStarted event, for evaluations inside a training run.
    """
    tasks = select_tasks(domain, config)
    if record_run:
        await store.append("runs", [RunStarted(run_id=config.run_id, config=msgspec.to_builtins(config))])
    await register_tasks(store, domain, tasks, config.split)
    runner = EpisodeRunner(
        domain=domain,
        config=EpisodeConfig(max_steps=config.max_steps, max_errors=config.max_errors),
        evaluate=Evaluator(domain).evaluate,
    )
    jobs = plan_trials(tasks, config.trials, seed=config.seed, prefix=config.run_id)
    outcomes = await run_episodes(
        runner,
        jobs,
        make_policy=make_policy,
        make_user=make_user,
        store=store,
        concurrency=config.concurrency,
        policy_version=policy_version,
        policy_name=config.policy,
        user_name=config.user,
        on_done=on_done,
        purpose="eval",
    )
    rewards: dict[str, list[float]] = defaultdict(list)
    terminations: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        rewards[outcome.task_id].append(outcome.reward.reward if outcome.reward else 0.0)
        terminations[outcome.termination] += 1
    report = pass_k_report(rewards)
    episode_ids = [o.episode_id for o in outcomes]
    await store.append(
        f"evaluation-{config.run_id}",
        [
            EvaluationFinished(
                split=config.split,
                policy_version=policy_version,
                trials=config.trials,
                num_tasks=len(tasks),
                pass_hat_k=report.pass_hat,
                episode_ids=episode_ids,
            )
        ],
    )
    return EvalResult(report=report, rewards=dict(rewards), terminations=dict(terminations), episode_ids=episode_ids)
