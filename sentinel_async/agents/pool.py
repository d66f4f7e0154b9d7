"""The training task pool: original and proposed tasks, kept in the learnable band, every decision an event.

The pool is a projection of the log: `TaskRegistered` (train split or proposed) makes a task known,
`TaskAdmitted` / `TaskRetired` change its status, and `EpisodeFinished` adds to its recent results. So a
restarted run folds the log and gets the same pool back.

Sampling (`TaskPool.sample`) picks `size` tasks for one rollout round: `proposed_ratio` of them from proposed
tasks (fewer if there are not enough), the rest from original ones. Within a source, tasks are weighted by how
learnable they look under the current policy: in the band (recent pass rate strictly between 0 and 1) ``band``,
never tried ``unseen``, always failing ``too_hard``, and (original tasks only; proposed ones are retired)
always solved ``solved``.
"""

from __future__ import annotations

import random
from collections import deque

import msgspec

from sentinel_async.events import (
    EpisodeFinished,
    RecordedEvent,
    SampledTask,
    TaskAdmitted,
    TaskRegistered,
    TaskRetired,
    TaskSource,
    TasksSampled,
)
from sentinel_async.metrics import is_success


class PoolConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the pool samples and when it retires tasks."""

    proposed_ratio: float = 0.5
    window: int = 8
    """Recent episodes per task that define its pass rate."""
    retire_after: int = 8
    """A proposed task is retired once its last `retire_after` episodes all succeeded."""
    give_up_after: int = 32
    """A proposed task is retired once its last `give_up_after` episodes all failed."""
    weights: dict[str, float] = msgspec.field(
        default_factory=lambda: {"band": 4.0, "unseen": 2.0, "too_hard": 0.5, "solved": 0.25}
    )


class PoolTask(msgspec.Struct, kw_only=True):
    """A task's place in the pool."""

    task_id: str
    source: TaskSource
    active: bool = False
    retired_reason: str | None = None
    recent: deque[bool] = msgspec.field(default_factory=deque)
    episodes: int = 0

    def pass_rate(self, window: int = 8) -> float | None:
        """The success rate of the last `window` episodes (None before the first)."""
        recent = list(self.recent)[-window:]
        return sum(recent) / len(recent) if recent else None

    def standing(self, window: int = 8) -> str:
        rate = self.pass_rate(window)
        if rate is None:
            return "unseen"
        if rate == 0.0:
            return "too_hard"
        if rate == 1.0:
            return "solved"
        return "band"


class TaskPool:
    """The pool's state, folded from events; decisions come back as events to commit."""

    def __init__(self, config: PoolConfig | None = None, *, train_split: str = "train") -> None:
        self.config = config or PoolConfig()
        self.train_split = train_split
        self.tasks: dict[str, PoolTask] = {}
        self.rounds = 0

    # --- folding the log ------------------------------------------------------------------------------------

    def apply(self, record: RecordedEvent) -> None:
        """Fold one event into the pool."""
        payload = record.payload
        if isinstance(payload, TaskRegistered):
            if payload.source == "benchmark" and payload.split != self.train_split:
                return  # evaluation tasks never enter the training pool
            self.tasks.setdefault(payload.task_id, PoolTask(task_id=payload.task_id, source=payload.source))
        elif isinstance(payload, TaskAdmitted):
            task = self.tasks.setdefault(payload.task_id, PoolTask(task_id=payload.task_id, source=payload.source))
            task.active, task.retired_reason = True, None
        elif isinstance(payload, TaskRetired):
            if payload.task_id in self.tasks:
                self.tasks[payload.task_id].active = False
                self.tasks[payload.task_id].retired_reason = payload.reason
        elif isinstance(payload, EpisodeFinished) and payload.purpose == "train":
            known = self.tasks.get(payload.task_id)
            if known is not None and known.active:
                known.recent.append(is_success(payload.reward))
                while len(known.recent) > max(self.config.window, self.config.give_up_after):
                    known.recent.popleft()
                known.episodes += 1
        elif isinstance(payload, TasksSampled):
            self.rounds = max(self.rounds, payload.round + 1)

    # --- decisions --------------------------------------------------------------------------------------------

    def admissions(self) -> list[TaskAdmitted]:
        """Known tasks that are neither active nor retired: admit them."""
        return [
            TaskAdmitted(task_id=t.task_id, source=t.source, reason="registered")
            for t in self.tasks.values()
            if not t.active and t.retired_reason is None
        ]

    def retirements(self) -> list[TaskRetired]:
        """Proposed tasks that are solved (or hopeless) under the current policy; originals are kept."""
        retired: list[TaskRetired] = []
        for task in self.tasks.values():
            if not task.active or task.source == "benchmark":
                continue
            recent = list(task.recent)
            solved = recent[-self.config.retire_after :]
            failed = recent[-self.config.give_up_after :]
            if len(solved) >= self.config.retire_after and all(solved):
                retired.append(TaskRetired(task_id=task.task_id, reason="solved", pass_rate=1.0))
            elif len(failed) >= self.config.give_up_after and not any(failed):
                retired.append(TaskRetired(task_id=task.task_id, reason="too hard", pass_rate=0.0))
        return retired

    def sample(self, size: int, rng: random.Random) -> TasksSampled:
        """Choose `size` active tasks for the next rollout round (see the module docstring)."""
        active = [t for t in self.tasks.values() if t.active]
        proposed = [t for t in active if t.source != "benchmark"]
        original = [t for t in active if t.source == "benchmark"]
        want_proposed = min(len(proposed), round(size * self.config.proposed_ratio))
        chosen = self._weighted(proposed, want_proposed, rng)
        chosen += self._weighted(original, min(len(original), size - len(chosen)), rng)
        if len(chosen) < size:  # not enough originals: fill with more proposed tasks
            left = [t for t in proposed if t not in chosen]
            chosen += self._weighted(left, min(len(left), size - len(chosen)), rng)
        sampled = [
            SampledTask(
                task_id=t.task_id,
                source=t.source,
                pass_rate=t.pass_rate(self.config.window),
                reason=t.standing(self.config.window),
            )
            for t in chosen
        ]
        return TasksSampled(round=self.rounds, tasks=sampled)

    def _weighted(self, tasks: list[PoolTask], count: int, rng: random.Random) -> list[PoolTask]:
        """`count` distinct tasks, drawn with probability proportional to their standing's weight."""
        remaining = sorted(tasks, key=lambda t: t.task_id)  # order-independent of dict insertion
        chosen: list[PoolTask] = []
        for _ in range(count):
            weights = [self.config.weights.get(t.standing(self.config.window), 1.0) for t in remaining]
            pick = rng.choices(range(len(remaining)), weights=weights)[0]
            chosen.append(remaining.pop(pick))
        return chosen

    # --- views ------------------------------------------------------------------------------------------------

    def composition(self) -> dict[str, dict[str, int]]:
        """Active task counts by source and standing (for reports and plots)."""
        counts: dict[str, dict[str, int]] = {}
        for task in self.tasks.values():
            if task.active:
                by_standing = counts.setdefault(task.source, {})
                standing = task.standing(self.config.window)
                by_standing[standing] = by_standing.get(standing, 0) + 1
        return counts
