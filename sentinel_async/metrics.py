"""pass^k and pass@k over repeated trials, computed exactly as tau2 (`tau2/metrics/agent_metrics.py`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

SUCCESS_TOLERANCE = 1e-6


def is_success(reward: float) -> bool:
    """tau2's success test: the reward is within 1e-6 of 1.0."""
    return (1 - SUCCESS_TOLERANCE) <= reward <= (1 + SUCCESS_TOLERANCE)


def pass_hat_k(num_trials: int, successes: int, k: int) -> float:
    """pass^k of one task: the chance that k trials drawn without replacement all succeed."""
    if num_trials < k:
        raise ValueError(f"Number of trials {num_trials} is less than k {k}.")
    return math.comb(successes, k) / math.comb(num_trials, k)


def pass_at_k(num_trials: int, successes: int, k: int) -> float:
    """pass@k of one task: the chance that at least one of k trials drawn without replacement succeeds."""
    if num_trials < k:
        raise ValueError(f"Number of trials {num_trials} is less than k {k}.")
    return 1.0 - math.comb(num_trials - successes, k) / math.comb(num_trials, k)


class PassKReport(msgspec.Struct, frozen=True, kw_only=True):
    """Averages over tasks of pass^k and pass@k for k = 1..max_k (max_k: the fewest trials of any task)."""

    num_tasks: int
    num_trials: int
    max_k: int
    avg_reward: float
    pass_hat: dict[int, float]
    pass_at: dict[int, float]


def pass_k_report(rewards: Mapping[str, Sequence[float]], max_k: int | None = None) -> PassKReport:
    """pass^k and pass@k from task_id -> the rewards of its trials.

    As tau2: k goes up to the fewest trials any task has, each task uses all its own trials, and the
    average reward is over all trials.
    """
    if not rewards or any(len(r) == 0 for r in rewards.values()):
        raise ValueError("need at least one task and at least one trial per task")
    fewest = min(len(r) for r in rewards.values())
    top = fewest if max_k is None else min(max_k, fewest)
    counts = [(len(r), sum(is_success(x) for x in r)) for r in rewards.values()]
    all_rewards = [x for r in rewards.values() for x in r]
    return PassKReport(
        num_tasks=len(rewards),
        num_trials=len(all_rewards),
        max_k=top,
        avg_reward=math.fsum(all_rewards) / len(all_rewards),
        pass_hat={k: sum(pass_hat_k(n, c, k) for n, c in counts) / len(counts) for k in range(1, top + 1)},
        pass_at={k: sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in range(1, top + 1)},
    )


def format_pass_k_table(report: PassKReport, title: str = "") -> str:
    """A plain-text table: one row per k with pass^k and pass@k."""
    lines = [title] if title else []
    lines.append(f"tasks={report.num_tasks} trials={report.num_trials} avg_reward={report.avg_reward:.4f}")
    lines.append(f"{'k':>3}  {'pass^k':>8}  {'pass@k':>8}")
    for k in range(1, report.max_k + 1):
        lines.append(f"{k:>3}  {report.pass_hat[k]:>8.4f}  {report.pass_at[k]:>8.4f}")
    return "\n".join(lines)
