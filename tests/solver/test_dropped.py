"""Dropped groups are events: `GroupsDropped` is committed with the Solver's cursor (alone, or in the step's
transaction), a restarted Solver never screens a dropped group again, and the counts still reach the metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel_async.agents.solver import BatchingConfig, GRPOTrainer, Solver, SolverConfig, TrainerConfig
from sentinel_async.agents.solver.trainer import load_policy
from sentinel_async.events import (
    AssistantMessage,
    BatchFormed,
    EpisodeFinished,
    EpisodeStarted,
    Event,
    GroupsDropped,
    PolicyUpdated,
)
from sentinel_async.messages import TokenTrace
from sentinel_async.store import EventStore, MemoryEventStore, SQLiteEventStore, StreamAppend
from sentinel_async.store.base import as_new_events

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

CONFIG = SolverConfig(batching=BatchingConfig(groups_per_batch=2, group_size=4))


def flat_group(store: EventStore, group: str, reward: float = 1.0, size: int = 4) -> None:
    """`size` finished episodes of one group, all with the same reward (no learning signal)."""
    trace = TokenTrace(prompt_ids=[1, 2, 3], sampled_ids=[4, 5], logprobs=[-1.0, -2.0])
    for i in range(size):
        episode_id = f"{group}-{i}"
        events: list[Event] = [
            EpisodeStarted(episode_id=episode_id, task_id="t", domain="d", policy_version=0, seed=i, group_id=group),
            AssistantMessage(episode_id=episode_id, turn=1, tokens=trace, policy_version=0),
            EpisodeFinished(episode_id=episode_id, task_id="t", termination="user_stop", reward=reward),
        ]
        store.commit_sync([StreamAppend(stream_id=f"episode-{episode_id}", events=as_new_events(events))])


def last_finish(store: EventStore) -> int:
    return max(r.position for r in store.read() if isinstance(r.payload, EpisodeFinished))


def solver_events(store: EventStore) -> list[Any]:
    return [r.payload for r in store.read_stream("solver")]


async def test_a_flat_group_is_recorded_once_and_never_screened_again_after_a_restart(
    fill: Callable[[EventStore], None], new_model: Callable[[], Any], tmp_path: Path
) -> None:
    log, checkpoints = tmp_path / "events.sqlite", tmp_path / "checkpoints"
    with SQLiteEventStore(log) as store:
        flat_group(store, "flat")
        solver = Solver(store, GRPOTrainer(new_model(), TrainerConfig(lr=1e-2), checkpoints), config=CONFIG)
        assert await solver.run(follow=False) == []
        # no batch formed: the drop is committed alone, with the cursor
        assert solver_events(store) == [
            GroupsDropped(groups={"flat": "zero_variance"}, episodes={}, step=1, policy_version=0)
        ]
        assert store.cursor("solver") == last_finish(store)

    with SQLiteEventStore(log) as store:  # a new process: the same log, more episodes
        fill(store)
        solver = Solver(store, GRPOTrainer(new_model(), TrainerConfig(lr=1e-2), checkpoints), config=CONFIG)
        solver.catch_up()
        assert "flat" in solver.tracker.consumed
        assert solver.dropped == {"dropped_groups_zero_variance": 1}
        assert len(await solver.run(follow=False)) == 1
        dropped, formed, updated = solver_events(store)
        assert isinstance(dropped, GroupsDropped)
        assert isinstance(formed, BatchFormed)
        assert isinstance(updated, PolicyUpdated)
        assert len(formed.groups) == 2
        assert "flat" not in formed.groups
        assert updated.metrics["dropped_groups_zero_variance"] == 1.0, "counted from the log, not re-screened"
        assert store.cursor("solver") == last_finish(store)

    with SQLiteEventStore(log) as store:  # restarted again at version 1: nothing left to do, nothing repeated
        trainer = GRPOTrainer(load_policy(checkpoints, 1), TrainerConfig(lr=1e-2), checkpoints, version=1,
                              save_initial=False, resume=True)  # fmt: skip
        solver = Solver(store, trainer, config=CONFIG)
        assert await solver.run(follow=False) == []
        assert solver_events(store) == [dropped, formed, updated]
        assert solver.dropped == {}, "those drops were folded into the update's metrics"


async def test_drops_found_when_a_batch_forms_commit_in_the_same_transaction(
    fill: Callable[[EventStore], None], new_model: Callable[[], Any], tmp_path: Path
) -> None:
    store = MemoryEventStore()
    fill(store)
    flat_group(store, "flat", reward=0.0)
    solver = Solver(store, GRPOTrainer(new_model(), TrainerConfig(lr=1e-2), tmp_path / "checkpoints"), config=CONFIG)
    solver.catch_up()
    for record in store.read():  # everything is complete before the solver first looks
        solver.tracker.observe(record.payload)
    head = last_finish(store)
    result = await solver.maybe_train(head)
    assert result is not None
    records = list(store.read_stream("solver"))
    assert [r.type for r in records] == ["groups_dropped", "batch_formed", "policy_updated"]
    assert [r.position for r in records] == [head + 1, head + 2, head + 3], "committed together, with the cursor"
    assert records[0].payload == GroupsDropped(groups={"flat": "zero_variance"}, step=1, policy_version=0)
    assert store.cursor("solver") == head
    assert result.metrics["dropped_groups_zero_variance"] == 1.0
