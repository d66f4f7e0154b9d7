"""Reading evaluations back from run logs: per-task rewards, pass^k with bootstrap confidence intervals over
tasks (paired across arms), and the failure categories and diagnoses of failed episodes.

Used by the SENTINEL vs general-synthetic experiment (`examples/experiment.py`) and `sentinel log failures`;
everything here reads logs only.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

from sentinel_async.events import EpisodeFinished, EvaluationFinished, FailureDiagnosed
from sentinel_async.metrics import is_success, pass_at_k, pass_hat_k
from sentinel_async.store import EventFilter, EventStore
from sentinel_async.tools.base import Domain

TaskRewards = dict[str, list[float]]
"""task id -> the rewards of its trials."""


class Interval(msgspec.Struct, frozen=True):
    """A mean and its confidence interval."""

    mean: float
    low: float
    high: float

    def format(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def evaluations_in(store: EventStore) -> list[EvaluationFinished]:
    """Every `EvaluationFinished` of a log, in order."""
    found = [r.payload for r in store.read(filter=EventFilter.of(types=[EvaluationFinished]))]
    return [e for e in found if isinstance(e, EvaluationFinished)]


def finished_episodes(store: EventStore, episode_ids: Sequence[str]) -> list[EpisodeFinished]:
    """The `EpisodeFinished` events of `episode_ids` (in log order; ids without one are skipped)."""
    wanted = set(episode_ids)
    found = []
    for record in store.read(filter=EventFilter.of(types=[EpisodeFinished])):
        payload = record.payload
        if isinstance(payload, EpisodeFinished) and payload.episode_id in wanted:
            found.append(payload)
    return found


def task_rewards(store: EventStore, evaluation: EvaluationFinished) -> TaskRewards:
    """The rewards per task of one evaluation."""
    rewards: TaskRewards = {}
    for finished in finished_episodes(store, evaluation.episode_ids):
        rewards.setdefault(finished.task_id, []).append(finished.reward)
    return rewards


def task_pass_hat(rewards: TaskRewards, k: int) -> dict[str, float]:
    """pass^k of every task (tasks with fewer than k trials are left out)."""
    return {task: pass_hat_k(len(r), sum(is_success(x) for x in r), k) for task, r in rewards.items() if len(r) >= k}


def task_pass_at(rewards: TaskRewards, k: int) -> dict[str, float]:
    """pass@k of every task: the chance that one of k trials succeeds (tasks with fewer than k trials left out)."""
    return {task: pass_at_k(len(r), sum(is_success(x) for x in r), k) for task, r in rewards.items() if len(r) >= k}


def pass_at_ci(
    rewards: TaskRewards, k: int, *, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """pass@k averaged over tasks, with a percentile bootstrap interval over tasks.

    Of sampled episodes, pass@k is what a policy's own samples solve: the most that reinforcing its successes
    can bring greedy pass^1 to on these tasks, unless training also teaches what no sample showed."""
    by_task = task_pass_at(rewards, k)
    if not by_task:
        raise ValueError(f"no task has {k} trials")
    return _bootstrap(list(by_task.values()), samples=samples, confidence=confidence, seed=seed)


def pass_hat_ci(
    runs: Sequence[TaskRewards], k: int, *, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """pass^k averaged over tasks and runs (seeds), with a percentile bootstrap interval over tasks.

    Each bootstrap sample draws tasks with replacement and keeps every run's results for a drawn task, so the
    interval reflects which tasks happen to be in the split; runs (seeds) are averaged, not resampled.
    """
    per_run = [task_pass_hat(r, k) for r in runs]
    tasks = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    if not tasks:
        raise ValueError(f"no task has {k} trials in every run")
    by_task = [statistics.fmean(p[t] for p in per_run) for t in tasks]
    return _bootstrap(by_task, samples=samples, confidence=confidence, seed=seed)


def paired_difference_ci(
    a: Sequence[TaskRewards],
    b: Sequence[TaskRewards],
    k: int,
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """pass^k of `a` minus pass^k of `b`, bootstrapped over the tasks both evaluated (a paired comparison)."""
    pa = [task_pass_hat(r, k) for r in a]
    pb = [task_pass_hat(r, k) for r in b]
    tasks = sorted(set.intersection(*(set(p) for p in pa + pb)))
    if not tasks:
        raise ValueError(f"no common task has {k} trials in every run")
    diffs = [statistics.fmean(p[t] for p in pa) - statistics.fmean(p[t] for p in pb) for t in tasks]
    return _bootstrap(diffs, samples=samples, confidence=confidence, seed=seed)


def _bootstrap(values: Sequence[float], *, samples: int, confidence: float, seed: int) -> Interval:
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(samples))
    tail = (1 - confidence) / 2
    low = means[int(tail * (samples - 1))]
    high = means[int((1 - tail) * (samples - 1))]
    return Interval(mean=statistics.fmean(values), low=low, high=high)


async def failure_categories(store: EventStore, domain: Domain, episode_ids: Sequence[str]) -> Counter[str]:
    """The category of every failed episode among `episode_ids` (their `diagnose_failures`)."""
    if not episode_ids:
        return Counter()
    return Counter(d.category for d in await diagnose_failures(store, domain, episode_ids=episode_ids))


async def diagnose_failures(
    store: EventStore,
    domain: Domain,
    *,
    task_ids: Sequence[str] = (),
    episode_ids: Sequence[str] = (),
) -> list[FailureDiagnosed]:
    """The diagnosis of every failed, finished episode of a log, in log order (only `task_ids` / `episode_ids`
    when given): the one the Controller recorded where the log has it (a run), else the deterministic
    Controller's, computed without recording anything (an evaluation)."""
    from sentinel_async.agents.controller.service import Controller

    wanted_tasks, wanted_episodes = set(task_ids), set(episode_ids)
    recorded: dict[str, FailureDiagnosed] = {}
    for record in store.read(filter=EventFilter.of(types=[FailureDiagnosed])):
        if isinstance(record.payload, FailureDiagnosed):
            recorded.setdefault(record.payload.episode_id, record.payload)
    controller = Controller(domain)
    found: list[FailureDiagnosed] = []
    for record in store.read(filter=EventFilter.of(types=[EpisodeFinished])):
        finished = record.payload
        if not isinstance(finished, EpisodeFinished) or is_success(finished.reward):
            continue
        if (wanted_tasks and finished.task_id not in wanted_tasks) or (
            wanted_episodes and finished.episode_id not in wanted_episodes
        ):
            continue
        diagnosis = recorded.get(finished.episode_id)
        if diagnosis is None:
            computed = await controller.diagnose(store, finished)
            diagnosis = computed.to_event(finished.task_id, finished.episode_id)
        found.append(diagnosis)
    return found


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Counts as fractions of their total."""
    total = sum(counts.values())
    return {key: value / total for key, value in counts.items()} if total else {}
