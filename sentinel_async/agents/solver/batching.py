"""Forming training batches of complete GRPO groups from the log.

A group (`EpisodeStarted.group_id`; an episode without one is a group of its own) is complete when every
episode started in it has finished and, with `group_size` set, at least that many have. A complete group is
dropped, as data (`BatchPlan.dropped_groups` / `dropped_episodes`, which the Solver records as a
`GroupsDropped` event and as counts in the next step's metrics), when an episode in it is stale or has a
policy-version mismatch (see `weights.check_versions`) or when its rewards all agree (zero variance: no
learning signal). A `BatchFormed` event lists exactly the episodes kept, by group.

The reward a group is normalised on is tau2's episode reward plus `progress_weight` times the share of the
task's gold actions the episode matched (`training_reward`): with a weight above 0, episodes that fail at
different points differ, so a policy that never solves a task still learns which attempts got further. The
weight is recorded in `BatchFormed`, so a replayed batch gets the same advantages; reported rewards and
pass^k stay tau2's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import msgspec

from sentinel_async.agents.solver.samples import EpisodeTrace, TrainingSample, load_trace
from sentinel_async.agents.solver.weights import check_versions
from sentinel_async.events import BatchFormed, EpisodeFinished, EpisodeStarted, Event, GroupsDropped
from sentinel_async.store import EventStore


class BatchingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How many groups make a batch, the expected group size, and the staleness bound (in versions)."""

    groups_per_batch: int = 2
    group_size: int | None = None
    max_staleness: int = 1
    allow_mixed_versions: bool = True
    min_reward_std: float = 1e-6
    progress_weight: float = 0.0
    """Weight of the share of gold actions matched in the training reward (0: tau2's reward alone). Below 1, a
    solved episode always outranks an unsolved one."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.progress_weight < 1.0:
            raise ValueError(f"progress_weight must be in [0, 1), not {self.progress_weight}")


def training_reward(trace: EpisodeTrace, progress_weight: float) -> float:
    """What a group is normalised on: the episode's reward plus `progress_weight` times its progress."""
    return trace.reward + progress_weight * trace.progress


class TrainingBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The episodes of one step, by group, with each episode's group-normalised advantage."""

    batch_id: str
    step: int
    policy_version: int
    groups: dict[str, list[str]]
    traces: list[EpisodeTrace]
    advantages: dict[str, float]
    progress_weight: float = 0.0

    @property
    def samples(self) -> list[TrainingSample]:
        return [s for t in self.traces for s in t.samples]

    @property
    def episode_ids(self) -> list[str]:
        return [t.episode_id for t in self.traces]


class BatchPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What batching decided: the batch (None when too few groups were kept) and every drop with its reason."""

    batch: TrainingBatch | None
    dropped_groups: dict[str, str] = msgspec.field(default_factory=dict)
    dropped_episodes: dict[str, str] = msgspec.field(default_factory=dict)


def group_advantages(rewards: Sequence[float], eps: float = 1e-6) -> list[float]:
    """(r - mean) / (std + eps) with the population standard deviation of the group."""
    mean = statistics.fmean(rewards)
    std = statistics.pstdev(rewards)
    return [(r - mean) / (std + eps) for r in rewards]


def batch_id_for(step: int) -> str:
    return f"batch-{step:06d}"


GROUP_EVENTS = (EpisodeStarted, EpisodeFinished, BatchFormed, GroupsDropped)
"""The event types `GroupTracker` folds (what a reader of groups subscribes to)."""


class GroupTracker:
    """Follows episode starts and finishes, and which episodes a batch already consumed."""

    def __init__(self, group_size: int | None = None) -> None:
        self.group_size = group_size
        self.started: dict[str, list[str]] = {}
        self.finished: set[str] = set()
        self.consumed: set[str] = set()
        self._order: list[str] = []

    def observe(self, payload: Event) -> None:
        """Fold one event; evaluation episodes are never training material."""
        match payload:
            case EpisodeStarted(purpose="eval"):
                pass
            case EpisodeStarted(episode_id=episode_id, group_id=group_id):
                group = group_id or episode_id
                if group not in self.started:
                    self.started[group] = []
                    self._order.append(group)
                self.started[group].append(episode_id)
            case EpisodeFinished(episode_id=episode_id):
                self.finished.add(episode_id)
            case BatchFormed(groups=groups):
                for group in groups:
                    self.consume(group)
            case GroupsDropped(groups=dropped):
                for group in dropped:
                    self.consume(group)
            case _:
                pass

    def consume(self, group: str) -> None:
        """Mark a group as used (batched or dropped)."""
        self.consumed.add(group)

    def complete_groups(self) -> list[tuple[str, list[str]]]:
        """Complete, unconsumed groups in order of their first start."""
        out: list[tuple[str, list[str]]] = []
        for group in self._order:
            episodes = self.started[group]
            if group in self.consumed or not all(e in self.finished for e in episodes):
                continue
            if self.group_size is not None and len(episodes) < self.group_size:
                continue
            out.append((group, list(episodes)))
        return out


def screen_group(
    traces: Sequence[EpisodeTrace], current_version: int, config: BatchingConfig
) -> tuple[str | None, dict[str, str]]:
    """Why a group is dropped (or None), and the reasons of its individual bad episodes."""
    bad: dict[str, str] = {}
    for trace in traces:
        reason = check_versions(trace, current_version, config.max_staleness, allow_mixed=config.allow_mixed_versions)
        if reason is not None:
            bad[trace.episode_id] = reason
    if bad:
        return sorted(set(bad.values()))[0], bad
    rewards = [training_reward(t, config.progress_weight) for t in traces]
    if len(traces) < 2 or statistics.pstdev(rewards) < config.min_reward_std:
        return "zero_variance", bad
    return None, bad


def make_batch(
    step: int,
    policy_version: int,
    groups: Sequence[tuple[str, Sequence[EpisodeTrace]]],
    eps: float = 1e-6,
    *,
    progress_weight: float = 0.0,
) -> TrainingBatch:
    """A batch of the given groups, with advantages normalised per group on `training_reward`."""
    advantages: dict[str, float] = {}
    traces: list[EpisodeTrace] = []
    for _, members in groups:
        rewards = [training_reward(t, progress_weight) for t in members]
        for trace, adv in zip(members, group_advantages(rewards, eps), strict=True):
            advantages[trace.episode_id] = adv
            traces.append(trace)
    return TrainingBatch(
        batch_id=batch_id_for(step),
        step=step,
        policy_version=policy_version,
        groups={g: [t.episode_id for t in members] for g, members in groups},
        traces=traces,
        advantages=advantages,
        progress_weight=progress_weight,
    )


def plan_batch(
    store: EventStore, tracker: GroupTracker, *, step: int, current_version: int, config: BatchingConfig
) -> BatchPlan:
    """Screen the complete groups; when `groups_per_batch` survive, batch them (and consume every screened group).

    Dropped groups are consumed at once; kept groups stay pending until a batch takes them.
    """
    kept: list[tuple[str, list[EpisodeTrace]]] = []
    dropped_groups: dict[str, str] = {}
    dropped_episodes: dict[str, str] = {}
    for group, episode_ids in tracker.complete_groups():
        traces = [load_trace(store, e) for e in episode_ids]
        reason, bad = screen_group(traces, current_version, config)
        dropped_episodes.update(bad)
        if reason is not None:
            dropped_groups[group] = reason
            tracker.consume(group)
        elif len(kept) < config.groups_per_batch:
            kept.append((group, traces))
    if len(kept) < config.groups_per_batch:
        return BatchPlan(batch=None, dropped_groups=dropped_groups, dropped_episodes=dropped_episodes)
    for group, _ in kept:
        tracker.consume(group)
    batch = make_batch(step, current_version, kept, progress_weight=config.progress_weight)
    return BatchPlan(batch=batch, dropped_groups=dropped_groups, dropped_episodes=dropped_episodes)


def drops_event(plan: BatchPlan, *, step: int, policy_version: int) -> GroupsDropped | None:
    """The `GroupsDropped` event recording a plan's drops, or None when it dropped nothing."""
    if not plan.dropped_groups and not plan.dropped_episodes:
        return None
    return GroupsDropped(
        groups=dict(plan.dropped_groups), episodes=dict(plan.dropped_episodes), step=step, policy_version=policy_version
    )


def batch_event(batch: TrainingBatch) -> BatchFormed:
    return BatchFormed(
        batch_id=batch.batch_id,
        step=batch.step,
        episode_ids=batch.episode_ids,
        groups=batch.groups,
        policy_version=batch.policy_version,
        progress_weight=batch.progress_weight,
    )


def rebuild_batch(store: EventStore, event: BatchFormed) -> TrainingBatch:
    """The batch a `BatchFormed` event lists, rebuilt from the episodes' streams (no screening)."""
    groups = [(g, [load_trace(store, e) for e in ids]) for g, ids in event.groups.items()]
    batch = make_batch(event.step, event.policy_version, groups, progress_weight=event.progress_weight)
    return msgspec.structs.replace(batch, batch_id=event.batch_id)
