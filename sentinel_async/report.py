"""The run report: markdown plus PNG plots, built from a run's log alone.

    sentinel report runs/run-...        # also written at the end of every `sentinel run`

Plots: held-out pass^1 over policy versions, failure-pattern counts over time, the task pool's composition
over rounds; and a few lineage examples: failed episode -> pattern -> proposed task -> later success.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import msgspec

from sentinel_async.events import (
    EpisodeFinished,
    EvaluationFinished,
    FailurePatternsUpdated,
    GroupsDropped,
    PolicyUpdated,
    RunStarted,
    TaskProposed,
    TasksSampled,
)
from sentinel_async.metrics import is_success
from sentinel_async.store import EventStore


class ReportData(msgspec.Struct, kw_only=True):
    """What the report shows, folded from the log."""

    run_id: str = ""
    evaluations: list[tuple[int, float, int]] = msgspec.field(default_factory=list)
    """(policy version, pass^1, position)"""
    patterns: list[tuple[int, dict[str, int]]] = msgspec.field(default_factory=list)
    """(episodes seen, count per pattern category)"""
    pool: list[tuple[int, dict[str, int]]] = msgspec.field(default_factory=list)
    """(round, sampled tasks per source)"""
    updates: list[tuple[int, dict[str, float]]] = msgspec.field(default_factory=list)
    proposed: dict[str, TaskProposed] = msgspec.field(default_factory=dict)
    results: dict[str, list[float]] = msgspec.field(default_factory=lambda: defaultdict(list))
    training_episodes: int = 0
    guides: list[float] = msgspec.field(default_factory=list)
    """The reward of each guide episode (the expert through the policy's tokens, `rollout.expert_episodes`)."""
    progress: list[float] = msgspec.field(default_factory=list)
    """Each training episode's share of gold actions matched, in the order they finished."""
    dropped: Counter[str] = msgspec.field(default_factory=Counter)
    """Groups the Solver dropped, by reason ("zero_variance", "stale", ...)."""


def collect(store: EventStore) -> ReportData:
    """Fold a run's log into the report's data."""
    data = ReportData()
    for record in store.read():
        payload = record.payload
        match payload:
            case RunStarted(run_id=run_id):
                data.run_id = data.run_id or run_id
            case EvaluationFinished(policy_version=version, pass_hat_k=pass_k):
                data.evaluations.append((version, pass_k.get(1, 0.0), record.position))
            case FailurePatternsUpdated(patterns=patterns, episodes_seen=seen):
                counts: Counter[str] = Counter()
                for pattern in patterns:
                    counts[pattern.category] += pattern.count
                data.patterns.append((seen, dict(counts)))
            case TasksSampled(round=round_, tasks=tasks):
                data.pool.append((round_, dict(Counter(t.source for t in tasks))))
            case PolicyUpdated(version=version, metrics=metrics):
                data.updates.append((version, metrics))
            case TaskProposed(task_id=task_id):
                data.proposed[task_id] = payload
            case GroupsDropped(groups=groups):
                data.dropped.update(groups.values())
            case EpisodeFinished(reward=reward, purpose="guide"):
                data.guides.append(reward)
            case EpisodeFinished(task_id=task_id, reward=reward, purpose="train", breakdown=breakdown):
                data.results[task_id].append(reward)
                data.training_episodes += 1
                if "progress" in breakdown:
                    data.progress.append(breakdown["progress"])
            case _:
                pass
    return data


def _plot(path: Path, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list[float], list[float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o", label=label)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def lineage_examples(data: ReportData, limit: int = 5) -> list[str]:
    """Proposed tasks with their origin and how the policy later did on them: the most solved first, then the
    most played, one per failure pattern before any pattern repeats."""

    def rank(proposal: TaskProposed) -> tuple[int, int]:
        rewards = data.results.get(proposal.task_id, [])
        return -_solved(rewards), -len(rewards)

    ranked = sorted(data.proposed.values(), key=rank)
    firsts: dict[str | None, TaskProposed] = {}
    for proposal in ranked:
        firsts.setdefault(proposal.lineage.pattern_id, proposal)
    chosen = sorted(ranked, key=lambda p: firsts[p.lineage.pattern_id] is not p)[:limit]  # stable: rank kept
    lines = []
    for proposal in chosen:
        rewards = data.results.get(proposal.task_id, [])
        outcome = f"later {_solved(rewards)}/{len(rewards)} successes" if rewards else "not played yet"
        origin = ", ".join(proposal.lineage.episode_ids[:3]) or "(general)"
        lines.append(
            f"- failed episodes {origin} -> pattern `{proposal.lineage.pattern_id}` -> task `{proposal.task_id}` "
            f"-> {outcome}"
        )
    return lines


def _solved(rewards: list[float]) -> int:
    return sum(map(is_success, rewards))


def training_signal(data: ReportData) -> list[str]:
    """Where GRPO's learning signal came from, or why there was none: groups trained on and dropped, and how
    many tasks the policy always solved, never solved, or solved sometimes (only those teach anything)."""
    if not data.training_episodes:
        return []
    successes = [[is_success(r) for r in rewards] for rewards in data.results.values()]
    always = sum(all(task) for task in successes)
    never = sum(not any(task) for task in successes)
    mixed = len(successes) - always - never
    solved = sum(map(sum, successes))
    dropped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in data.dropped.most_common())
    lines = [
        "## Training signal",
        "",
        f"Training episodes solved: {solved}/{data.training_episodes}. Tasks played: {len(data.results)}: "
        f"{always} always solved, {never} never solved, {mixed} sometimes (only these give GRPO an advantage).",
        f"Groups dropped: {dropped or 'none'}; policy updates: {len(data.updates)}.",
        "",
    ]
    if data.guides:
        lines += [
            f"Guide episodes (the expert's turns as the policy's tokens, one group member each; not counted above): "
            f"{len(data.guides)}, solved {_solved(data.guides)}.",
            "",
        ]
    if len(data.progress) >= 2:
        half = len(data.progress) // 2
        first, last = data.progress[:half], data.progress[half:]
        lines += [
            "Progress of training episodes (share of the task's gold actions matched, whether solved or not): "
            f"{sum(first) / len(first):.3f} in the first half, {sum(last) / len(last):.3f} in the second.",
            "",
        ]
    if not data.updates and data.dropped.get("zero_variance"):
        lines += [
            "No update was made because every complete group had the same reward for all its episodes: the policy "
            "is all-or-nothing on these tasks. More episodes per group (`rollout.group_size`), one group per "
            "batch (`batching.groups_per_batch=1`), a progress term in the training reward "
            "(`batching.progress_weight`), a higher `policy.temperature`, or a stronger starting policy "
            "give groups whose rewards differ.",
            "",
        ]
    return lines


def write_report(store: EventStore, folder: Path) -> Path:
    """Write report.md and its PNG plots into `folder`; returns the markdown's path."""
    data = collect(store)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Run report: {data.run_id}", "", f"Training episodes: {data.training_episodes}; "
             f"policy updates: {len(data.updates)}; proposed tasks: {len(data.proposed)}.", ""]  # fmt: skip
    if data.evaluations:
        versions = [float(v) for v, _, _ in data.evaluations]
        _plot(folder / "pass1.png", "held-out pass^1 by policy version", "policy version", "pass^1",
              {"pass^1": (versions, [p for _, p, _ in data.evaluations])})  # fmt: skip
        lines += ["## Held-out pass^1", "", "![pass^1](pass1.png)", "", "| version | pass^1 |", "| --- | --- |"]
        lines += [f"| {v} | {p:.3f} |" for v, p, _ in data.evaluations] + [""]
    if data.patterns:
        categories = sorted({c for _, counts in data.patterns for c in counts})
        xs = [float(seen) for seen, _ in data.patterns]
        series = {c: (xs, [float(counts.get(c, 0)) for _, counts in data.patterns]) for c in categories}
        _plot(folder / "patterns.png", "failure patterns", "training episodes seen", "failures", series)
        lines += ["## Failure patterns over time", "", "![patterns](patterns.png)", ""]
    if data.pool:
        sources = sorted({s for _, counts in data.pool for s in counts})
        xs = [float(r) for r, _ in data.pool]
        series = {s: (xs, [float(counts.get(s, 0)) for _, counts in data.pool]) for s in sources}
        _plot(folder / "pool.png", "tasks sampled per round, by source", "round", "tasks", series)
        lines += ["## Task pool composition", "", "![pool](pool.png)", ""]
    if data.updates:
        lines += ["## Training steps", "", "| version | loss | clip fraction | tokens |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {v} | {m.get('loss', 0.0):.4f} | {m.get('clip_fraction', 0.0):.3f} | {m.get('tokens', 0.0):.0f} |"
            for v, m in data.updates
        ] + [""]
    lines += training_signal(data)
    examples = lineage_examples(data)
    if examples:
        lines += ["## Lineage examples", "", *examples, ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
