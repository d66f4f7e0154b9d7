"""Batches hold complete groups only; zero-variance, stale and version-mismatched groups are dropped as data."""

from __future__ import annotations

from sentinel_async.agents.solver import BatchingConfig, GroupTracker, check_versions, load_trace, plan_batch
from sentinel_async.agents.solver.batching import batch_event, group_advantages, rebuild_batch
from sentinel_async.events import AssistantMessage, EpisodeFinished, EpisodeStarted, Event
from sentinel_async.messages import TokenTrace
from sentinel_async.store import MemoryEventStore, StreamAppend
from sentinel_async.store.base import as_new_events


def episode(
    store: MemoryEventStore,
    episode_id: str,
    group: str,
    reward: float,
    *,
    version: int = 0,
    turns: int | None = None,
    progress: float | None = None,
) -> list[Event]:
    breakdown = {} if progress is None else {"progress": progress}
    trace = TokenTrace(prompt_ids=[1, 2, 3], sampled_ids=[4, 5], logprobs=[-1.0, -2.0])
    events: list[Event] = [
        EpisodeStarted(episode_id=episode_id, task_id="t", domain="d", policy_version=version, seed=0, group_id=group),
        AssistantMessage(
            episode_id=episode_id, turn=1, tokens=trace, policy_version=version if turns is None else turns
        ),
        EpisodeFinished(
            episode_id=episode_id, task_id="t", termination="user_stop", reward=reward, breakdown=breakdown
        ),
    ]
    store.commit_sync([StreamAppend(stream_id=f"episode-{episode_id}", events=as_new_events(events))])
    return events


def tracked(store: MemoryEventStore, group_size: int | None = None) -> GroupTracker:
    tracker = GroupTracker(group_size)
    for record in store.read():
        tracker.observe(record.payload)
    return tracker


def test_advantages_are_group_normalised() -> None:
    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert [round(a, 4) for a in adv] == [1.0, -1.0, -1.0, 1.0]


def test_only_complete_groups_are_batched_and_the_event_lists_exactly_them() -> None:
    store = MemoryEventStore()
    for i, r in enumerate([1.0, 0.0]):
        episode(store, f"a{i}", "ga", r)
    episode(store, "b0", "gb", 1.0)
    unfinished = EpisodeStarted(episode_id="b1", task_id="t", domain="d", policy_version=0, seed=0, group_id="gb")
    store.commit_sync([StreamAppend(stream_id="episode-b1", events=as_new_events([unfinished]))])
    config = BatchingConfig(groups_per_batch=1)
    tracker = tracked(store)
    assert [g for g, _ in tracker.complete_groups()] == ["ga"]
    plan = plan_batch(store, tracker, step=1, current_version=0, config=config)
    assert plan.batch is not None
    event = batch_event(plan.batch)
    assert (event.batch_id, event.step, event.episode_ids, event.groups) == (
        "batch-000001",
        1,
        ["a0", "a1"],
        {"ga": ["a0", "a1"]},
    )
    assert rebuild_batch(store, event).advantages == plan.batch.advantages
    assert plan_batch(store, tracker, step=2, current_version=0, config=config).batch is None, "ga was consumed"


def test_zero_variance_and_stale_groups_are_dropped_with_reasons() -> None:
    store = MemoryEventStore()
    for i in range(3):
        episode(store, f"flat{i}", "flat", 1.0, version=2)
    for i, r in enumerate([0.0, 1.0]):
        episode(store, f"old{i}", "old", r, version=0)
    for i, r in enumerate([0.0, 1.0, 1.0]):
        episode(store, f"ok{i}", "ok", r, version=2)
    tracker = tracked(store)
    plan = plan_batch(
        store, tracker, step=1, current_version=2, config=BatchingConfig(groups_per_batch=1, max_staleness=1)
    )
    assert plan.dropped_groups == {"flat": "zero_variance", "old": "stale"}
    assert plan.dropped_episodes == {"old0": "stale", "old1": "stale"}
    assert plan.batch is not None
    assert plan.batch.groups == {"ok": ["ok0", "ok1", "ok2"]}


def test_version_mismatch_is_detected() -> None:
    store = MemoryEventStore()
    episode(store, "e", "g", 1.0, version=1, turns=0)  # a turn served by weights older than the episode claims
    episode(store, "f", "g2", 1.0, version=1, turns=5)  # a version the trainer never produced
    episode(store, "h", "g3", 1.0, version=1)
    assert check_versions(load_trace(store, "e"), current_version=2, max_staleness=4) == "version_mismatch"
    assert check_versions(load_trace(store, "f"), current_version=2, max_staleness=4) == "version_mismatch"
    assert check_versions(load_trace(store, "h"), current_version=2, max_staleness=4) is None
    assert check_versions(load_trace(store, "h"), current_version=3, max_staleness=1) == "stale"


def test_evaluation_episodes_never_form_groups() -> None:
    from sentinel_async.agents.solver.batching import GroupTracker
    from sentinel_async.events import EpisodeFinished, EpisodeStarted

    tracker = GroupTracker(2)
    for i in range(2):
        tracker.observe(
            EpisodeStarted(episode_id=f"e{i}", task_id="t", domain="d", policy_version=0, seed=i, group_id="g",
                           purpose="eval")
        )  # fmt: skip
        tracker.observe(EpisodeFinished(episode_id=f"e{i}", task_id="t", termination="user_stop", reward=float(i)))
    assert tracker.complete_groups() == []


def test_progress_weight_turns_failures_that_got_further_into_a_signal_and_replays_alike() -> None:
    store = MemoryEventStore()
    for i, progress in enumerate([0.25, 0.75, 0.25, 0.5]):
        episode(store, f"f{i}", "fails", 0.0, progress=progress)
    plain = plan_batch(store, tracked(store), step=1, current_version=0, config=BatchingConfig(groups_per_batch=1))
    assert plain.batch is None
    assert plain.dropped_groups == {"fails": "zero_variance"}

    config = BatchingConfig(groups_per_batch=1, progress_weight=0.5)
    plan = plan_batch(store, tracked(store), step=1, current_version=0, config=config)
    assert plan.batch is not None
    advantages = plan.batch.advantages
    assert advantages["f1"] > advantages["f3"] > advantages["f0"] == advantages["f2"]
    event = batch_event(plan.batch)
    assert event.progress_weight == 0.5
    assert rebuild_batch(store, event).advantages == advantages


def test_with_progress_a_solved_episode_still_beats_every_unsolved_one() -> None:
    store = MemoryEventStore()
    for i, (reward, progress) in enumerate([(1.0, 0.5), (0.0, 1.0), (0.0, 0.0)]):
        episode(store, f"e{i}", "g", reward, progress=progress)
    config = BatchingConfig(groups_per_batch=1, progress_weight=0.5)
    plan = plan_batch(store, tracked(store), step=1, current_version=0, config=config)
    assert plan.batch is not None
    advantages = plan.batch.advantages
    assert advantages["e0"] > advantages["e1"] > advantages["e2"]
