"""Running many episodes concurrently under a limit, each recorded in its own stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
import msgspec

from sentinel_async.agents.episode import EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.protocols import Policy, UserSimulator
from sentinel_async.agents.recording import StreamRecorder
from sentinel_async.events import Purpose
from sentinel_async.store import EventStore
from sentinel_async.tools.base import TaskSpec

PolicyFactory = Callable[[TaskSpec, int], Policy]
"""Makes the policy for one episode from its task and seed."""

UserFactory = Callable[[TaskSpec, int], UserSimulator]
"""Makes the simulated user for one episode from its task and seed."""


class EpisodeJob(msgspec.Struct, frozen=True, kw_only=True):
    """One episode to run: a task, a trial index, its seed and its id."""

    task: TaskSpec
    trial: int
    seed: int
    episode_id: str
    group_id: str | None = None


def plan_trials(tasks: Sequence[TaskSpec], trials: int, *, seed: int, prefix: str) -> list[EpisodeJob]:
    """`trials` episodes per task with distinct, reproducible seeds and ids `<prefix>-<task>-<trial>`."""
    return [
        EpisodeJob(
            task=task,
            trial=trial,
            seed=seed * 1_000_003 + index * 101 + trial,
            episode_id=f"{prefix}-{task.id}-{trial}",
            group_id=f"{prefix}-{task.id}",
        )
        for index, task in enumerate(tasks)
        for trial in range(trials)
    ]


async def run_episodes(
    runner: EpisodeRunner,
    jobs: Sequence[EpisodeJob],
    *,
    make_policy: PolicyFactory,
    make_user: UserFactory,
    store: EventStore | None = None,
    concurrency: int = 8,
    policy_version: int = 0,
    policy_name: str = "",
    user_name: str = "",
    on_done: Callable[[EpisodeOutcome], None] | None = None,
    buffered: bool = False,
    purpose: Purpose = "train",
) -> list[EpisodeOutcome]:
    """Run every job, at most `concurrency` at a time; outcomes come back in job order.

    With `buffered=True` each episode is written in one atomic append when it finishes, so the log only
    holds whole episodes and an interrupted one can be run again under the same id.
    """
    outcomes: list[EpisodeOutcome | None] = [None] * len(jobs)
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def run_one(index: int, job: EpisodeJob) -> None:
        async with limiter:
            outcome = await runner.run(
                task=job.task,
                policy=make_policy(job.task, job.seed),
                user=make_user(job.task, job.seed),
                episode_id=job.episode_id,
                seed=job.seed,
                policy_version=policy_version,
                recorder=StreamRecorder(store, job.episode_id, buffered=buffered) if store is not None else None,
                policy_name=policy_name,
                user_name=user_name,
                group_id=job.group_id,
                purpose=purpose,
            )
        outcomes[index] = outcome
        if on_done is not None:
            on_done(outcome)

    async with anyio.create_task_group() as group:
        for index, job in enumerate(jobs):
            group.start_soon(run_one, index, job)
    return [o for o in outcomes if o is not None]
