"""The Controller service: each failed episode diagnosed exactly once, across stops, restarts and crashes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import anyio
import msgspec
import pytest

from sentinel_async.agents.controller import Controller, ControllerConfig, PatternTracker
from sentinel_async.agents.scripted import (
    PrematureStopExpert,
)
from sentinel_async.errors import SentinelError
from sentinel_async.events import FailurePatternsUpdated, NewEvent, RecordedEvent, TaskRegistered
from sentinel_async.store import AppendResult, CursorUpdate, MemoryEventStore, SQLiteEventStore
from sentinel_async.store.base import StreamAppend
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from tests.controller.retail_episodes import PLAN, diagnoses, produce


async def test_diagnoses_every_failure_once_and_no_success(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    store = MemoryEventStore()
    expected = await produce(store, domain, tasks, PLAN)
    controller = Controller(domain, config=ControllerConfig(pattern_every=3))
    await controller.run(store, follow=False)
    found = {d.episode_id: d.category for d in diagnoses(store)}
    assert found == expected
    assert len(diagnoses(store)) == len(expected)
    updates = [r.payload for r in store.read_stream("controller") if isinstance(r.payload, FailurePatternsUpdated)]
    assert len(updates) == len(expected) // 3
    assert updates[-1].episodes_seen == len(PLAN)  # the last episode is the sixth failure
    wrong_item = next(p for p in updates[-1].patterns if p.pattern_id == "wrong_item:exchange_delivered_order_items")
    assert wrong_item.count == 2
    assert len(wrong_item.episode_ids) == 2
    assert store.cursor("controller") == max(r.position for r in store.read() if r.type == "episode_finished")
    # Causation links each diagnosis to its EpisodeFinished.
    finished_ids = {r.event_id for r in store.read() if r.type == "episode_finished"}
    assert all(r.causation_id in finished_ids for r in store.read_stream("controller"))


async def test_restart_resumes_exactly_once(tmp_path: Path, domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    path = tmp_path / "log.sqlite"
    with SQLiteEventStore(path) as store:
        expected = await produce(store, domain, tasks, PLAN)
        stop = anyio.Event()
        started: list[str] = []

        def on_start(record: RecordedEvent) -> None:
            started.append(record.event_id)
            if len(started) == 2:
                stop.set()

        await Controller(domain, config=ControllerConfig(pattern_every=2), on_analysis_start=on_start).run(
            store, stop=stop
        )
        assert len(diagnoses(store)) == 2
    with SQLiteEventStore(path) as store:  # a new process: everything comes from the log
        restarted = Controller(domain, config=ControllerConfig(pattern_every=2))
        await restarted.run(store, follow=False)
        assert sorted(d.episode_id for d in diagnoses(store)) == sorted(expected)
        assert restarted.stats.diagnosed == len(expected) - 2
        # The resumed pattern history equals a single uninterrupted run over the same log.
        once = MemoryEventStore()
        for r in store.read():
            if r.stream_id != "controller":
                event = NewEvent(payload=r.payload, event_id=r.event_id, causation_id=r.causation_id)
                once.commit_sync([StreamAppend(stream_id=r.stream_id, events=[event])])
        single = Controller(domain, config=ControllerConfig(pattern_every=2))
        await single.run(once, follow=False)
        assert [msgspec.to_builtins(r.payload) for r in once.read_stream("controller")] == [
            msgspec.to_builtins(r.payload) for r in store.read_stream("controller")
        ]
        assert PatternTracker.rebuild(r.payload for r in store.read_stream("controller")).patterns() == (
            restarted.tracker.patterns()
        )


class CrashingStore(MemoryEventStore):
    """Fails the n-th commit that carries a cursor (a crash between the analysis and its commit)."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.cursor_commits = 0

    async def commit(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        if cursor is not None:
            self.cursor_commits += 1
            if self.cursor_commits == self.crash_at:
                raise SentinelError("simulated crash")
        return await super().commit(appends, cursor=cursor)


async def test_crash_before_commit_is_redone_once(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    store = CrashingStore(crash_at=3)
    expected = await produce(store, domain, tasks, PLAN)
    with pytest.raises(SentinelError, match="simulated crash"):
        await Controller(domain, config=ControllerConfig(ack_every=1)).run(store, follow=False)
    before = len(diagnoses(store))
    await Controller(domain).run(store, follow=False)
    assert before < len(expected)
    assert sorted(d.episode_id for d in diagnoses(store)) == sorted(expected)


async def test_live_and_registered_task_not_in_domain(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    store = MemoryEventStore()
    proposed = msgspec.structs.replace(tasks["5"], id="proposed-1")
    spec = msgspec.to_builtins(proposed)
    await store.append("task-retail-proposed-1", [TaskRegistered(task_id="proposed-1", domain="retail",
                                                                 source="proposed", spec=spec)])  # fmt: skip
    stop = anyio.Event()
    controller = Controller(domain)
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(controller.run, store, stop=stop))
        expected = await produce(
            store, domain, {"proposed-1": proposed, **tasks}, [("proposed-1", PrematureStopExpert)]
        )
        with anyio.fail_after(5):
            while len(diagnoses(store)) < len(expected):
                await store.wait_for_head(store.head(), 0.05)
        stop.set()
    assert {d.episode_id: d.category for d in diagnoses(store)} == expected


async def test_evaluation_episodes_are_never_diagnosed() -> None:
    from sentinel_async.agents.controller import Controller
    from sentinel_async.events import EpisodeFinished, FailureDiagnosed
    from sentinel_async.store import MemoryEventStore
    from sentinel_async.tools.retail import RetailDomain

    store = MemoryEventStore()
    failed = EpisodeFinished(episode_id="e", task_id="5", termination="user_stop", reward=0.0, purpose="eval")
    await store.append("episode-e", [failed])
    await Controller(RetailDomain()).run(store, follow=False)
    assert not [r for r in store.read() if isinstance(r.payload, FailureDiagnosed)]
