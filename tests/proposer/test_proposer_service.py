"""The Proposer agent: proposed/rejected events with lineage pattern -> episodes, exactly once across a restart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sentinel_async.agents.proposer import ProposalEngine, Proposer, ProposerConfig, proposed_tasks
from sentinel_async.clock import ManualClock, SeededIds
from sentinel_async.events import (
    FailurePattern,
    FailurePatternsUpdated,
    TaskProposed,
    TaskRegistered,
    TaskRejected,
)
from sentinel_async.store import EventFilter, EventStore, SQLiteEventStore
from sentinel_async.tools.retail import RetailDomain

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")

CONFIG = ProposerConfig(candidates_per_pattern=2, check_tau2=False, seed=4)
PATTERNS = [
    FailurePattern(
        pattern_id="pat-variant", category="wrong item/variant", description="d", count=4, episode_ids=["ep-1", "ep-2"]
    ),
    FailurePattern(pattern_id="pat-items", category="missing items", description="d", count=2, episode_ids=["ep-3"]),
    FailurePattern(pattern_id="pat-old", category="policy violation", description="d", count=1, status="resolved"),
]


def open_store(path: Path, seed: int = 1) -> SQLiteEventStore:
    return SQLiteEventStore(path, clock=ManualClock(step=0.001), ids=SeededIds(seed))


def outputs(store: EventStore) -> tuple[list[TaskProposed], list[TaskRejected], list[TaskRegistered]]:
    proposed, rejected, registered = [], [], []
    for record in store.read():
        payload = record.payload
        if isinstance(payload, TaskProposed):
            proposed.append(payload)
        elif isinstance(payload, TaskRejected):
            rejected.append(payload)
        elif isinstance(payload, TaskRegistered):
            assert record.stream_id == f"task-retail-{payload.task_id}"
            registered.append(payload)
    return proposed, rejected, registered


async def test_proposals_are_committed_exactly_once_across_a_restart(tmp_path: Path, domain: RetailDomain) -> None:
    path = tmp_path / "log.sqlite"
    with open_store(path) as store:
        await store.append("controller", [FailurePatternsUpdated(patterns=PATTERNS, episodes_seen=10)])
        handled = await Proposer(store, ProposalEngine(domain, CONFIG)).run(follow=False)
        assert handled == 1
        proposed, rejected, registered = outputs(store)
        assert len(proposed) + len(rejected) == 4  # two per unresolved pattern
        assert len(proposed) >= 3
        assert len(registered) == len(proposed)
        for event in proposed:
            assert event.lineage.pattern_id in {"pat-variant", "pat-items"}
            wanted = {"pat-variant": ["ep-1", "ep-2"], "pat-items": ["ep-3"]}[event.lineage.pattern_id]
            assert event.lineage.episode_ids == wanted
            assert event.lineage.generator
            assert event.verification["scripted_reward"] == 1.0
        assert all(r.source == "proposed" and r.lineage is not None for r in registered)
        first_head = store.head()
        assert store.cursor("proposer") == 1

    with open_store(path, seed=2) as store:  # restart: nothing is redone
        assert await Proposer(store, ProposalEngine(domain, CONFIG)).run(follow=False) == 0
        assert store.head() == first_head
        # A new update with the same patterns: new candidates, deduplicated against the loaded proposals.
        await store.append("controller", [FailurePatternsUpdated(patterns=PATTERNS, episodes_seen=20)])
        assert await Proposer(store, ProposalEngine(domain, CONFIG)).run(follow=False) == 1
        proposed, rejected, _ = outputs(store)
        assert len(proposed) + len(rejected) == 8
        assert len({p.task_id for p in proposed}) == len(proposed)
        assert len({p.signature for p in proposed}) == len(proposed)
        assert [t.id for t in proposed_tasks(store)] == [p.task_id for p in proposed]


async def test_a_redo_proposes_the_same_tasks(tmp_path: Path, domain: RetailDomain) -> None:
    with open_store(tmp_path / "log.sqlite") as store:
        await store.append("controller", [FailurePatternsUpdated(patterns=PATTERNS[:1])])
        record = next(iter(store.read(filter=EventFilter.of(types=[FailurePatternsUpdated]))))
        first = Proposer(store, ProposalEngine(domain, CONFIG)).candidates_for(record)
        second = Proposer(store, ProposalEngine(domain, CONFIG)).candidates_for(record)
        assert [c.signature for c, _ in first] == [c.signature for c, _ in second]


async def test_general_mode_registers_untargeted_tasks(tmp_path: Path, domain: RetailDomain) -> None:
    config = ProposerConfig(mode="general", candidates_per_pattern=1, check_tau2=False)
    with open_store(tmp_path / "log.sqlite") as store:
        await store.append("controller", [FailurePatternsUpdated(patterns=PATTERNS)])
        await Proposer(store, ProposalEngine(domain, config)).run(follow=False)
        proposed, rejected, registered = outputs(store)
        assert len(proposed) + len(rejected) == 2
        assert all(p.lineage.pattern_id is None for p in proposed)
        assert all(r.source == "general" for r in registered)
        assert all(r.reason for r in rejected)
