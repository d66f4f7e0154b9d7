"""The contract every event store meets; it runs against the in-memory and the SQLite store."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from sentinel_async.bus import subscribe
from sentinel_async.errors import ConcurrencyError, CursorError, DuplicateEventError
from sentinel_async.events import EpisodeStarted, NewEvent, RecordedEvent, UserMessage
from sentinel_async.store import NO_STREAM, CursorUpdate, EventFilter, EventStore, StreamAppend

StoreFactory = Callable[[], EventStore]


def msg(episode: str, turn: int, text: str = "hi") -> UserMessage:
    return UserMessage(episode_id=episode, turn=turn, content=text)


def started(episode: str) -> EpisodeStarted:
    return EpisodeStarted(episode_id=episode, task_id="t1", domain="tiny", policy_version=0, seed=7)


async def test_append_assigns_gapless_positions_and_stream_versions(store: EventStore) -> None:
    first = await store.append("ep-1", [started("ep-1"), msg("ep-1", 0)], expected_version=NO_STREAM)
    second = await store.append("ep-2", [started("ep-2")])
    third = await store.append("ep-1", [msg("ep-1", 1)], expected_version=2)
    assert first.positions == [1, 2]
    assert first.versions == {"ep-1": 2}
    assert second.positions == [3]
    assert third.positions == [4]
    assert third.versions == {"ep-1": 3}
    assert store.head() == 4
    assert store.stream_version("ep-1") == 3
    assert store.stream_version("missing") == 0
    records = list(store.read())
    assert [r.position for r in records] == [1, 2, 3, 4]
    assert [(r.stream_id, r.version) for r in records] == [("ep-1", 1), ("ep-1", 2), ("ep-2", 1), ("ep-1", 3)]
    assert records[1].payload == msg("ep-1", 0)
    assert records[1].type == "user_message"


async def test_stale_expected_version_fails_and_writes_nothing(store: EventStore) -> None:
    await store.append("ep-1", [started("ep-1")])
    with pytest.raises(ConcurrencyError, match="at version 1, but the append expected version 0"):
        await store.append("ep-1", [msg("ep-1", 0)], expected_version=NO_STREAM)
    assert store.head() == 1
    assert store.stream_version("ep-1") == 1


async def test_multi_stream_transaction_is_all_or_nothing(store: EventStore) -> None:
    await store.append("b", [msg("b", 0)])
    appends = [
        StreamAppend(stream_id="a", events=[NewEvent(payload=msg("a", 0))], expected_version=NO_STREAM),
        StreamAppend(stream_id="b", events=[NewEvent(payload=msg("b", 1))], expected_version=5),
    ]
    with pytest.raises(ConcurrencyError):
        await store.commit(appends)
    assert store.head() == 1
    assert store.stream_version("a") == 0
    assert list(store.read(filter=EventFilter.of(streams=["a"]))) == []


async def test_reads_filter_by_range_stream_and_type(store: EventStore) -> None:
    for i in range(5):
        await store.append(f"ep-{i}", [started(f"ep-{i}"), msg(f"ep-{i}", 0), msg(f"ep-{i}", 1)])
    assert [r.position for r in store.read(after=3, to=6)] == [4, 5, 6]
    assert [r.position for r in store.read(after=3, limit=2)] == [4, 5]
    by_type = list(store.read(filter=EventFilter.of(types=[EpisodeStarted])))
    assert [r.position for r in by_type] == [1, 4, 7, 10, 13]
    by_stream = store.read_stream("ep-2")
    assert [r.version for r in by_stream] == [1, 2, 3]
    assert [r.version for r in store.read_stream("ep-2", after_version=1)] == [2, 3]
    prefixed = list(store.read(filter=EventFilter.of(stream_prefix="ep-4", types=["user_message"])))
    assert [r.position for r in prefixed] == [14, 15]


async def test_ids_default_correlation_to_self_and_keep_causation(store: EventStore) -> None:
    root = await store.append("ep-1", [started("ep-1")])
    cause = next(iter(store.read(after=root.positions[0] - 1)))
    assert cause.correlation_id == cause.event_id
    await store.append(
        "ep-1",
        [NewEvent(payload=msg("ep-1", 0), causation_id=cause.event_id, correlation_id=cause.correlation_id)],
    )
    effect = store.read_stream("ep-1")[-1]
    assert effect.causation_id == cause.event_id
    assert effect.correlation_id == cause.event_id
    assert effect.event_id != cause.event_id


async def test_cursor_moves_with_outputs_and_never_backwards(store: EventStore) -> None:
    await store.append("in", [msg("in", 0), msg("in", 1)])
    await store.append("out", [msg("out", 0)], cursor=CursorUpdate("worker", 1))
    assert store.cursor("worker") == 1
    assert store.cursors() == {"worker": 1}
    with pytest.raises(CursorError, match="already at position 1"):
        await store.append("out", [msg("out", 1)], cursor=CursorUpdate("worker", 1))
    assert store.stream_version("out") == 1, "a rejected cursor update must not write its events"
    await store.ack("worker", 2)
    assert store.cursor("worker") == 2
    assert store.cursor("nobody") == 0


async def test_concurrent_producers_lose_and_duplicate_nothing(store: EventStore) -> None:
    async def producer(n: int) -> None:
        for i in range(20):
            await store.append(f"p-{n}", [msg(f"p-{n}", i), msg(f"p-{n}", i)], expected_version=2 * i)

    async with anyio.create_task_group() as group:
        for n in range(25):
            group.start_soon(producer, n)
    records = list(store.read())
    assert [r.position for r in records] == list(range(1, 1001))
    assert len({r.event_id for r in records}) == 1000
    for n in range(25):
        stream = store.read_stream(f"p-{n}")
        assert [r.version for r in stream] == list(range(1, 41))
        assert [r.payload.turn for r in stream if isinstance(r.payload, UserMessage)] == [
            i for i in range(20) for _ in range(2)
        ]


async def test_a_conflicting_transaction_fails_alone_among_concurrent_ones(store: EventStore) -> None:
    await store.append("shared", [msg("shared", 0)])
    outcomes: list[str] = []

    async def writer(n: int) -> None:
        try:
            await store.append("shared", [msg("shared", n)], expected_version=1)
            outcomes.append("ok")
        except ConcurrencyError:
            outcomes.append("conflict")

    async def bystander(n: int) -> None:
        await store.append(f"other-{n}", [msg("x", n)])

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(writer, n)
            group.start_soon(bystander, n)
    assert sorted(outcomes) == ["conflict"] * 9 + ["ok"]
    assert store.stream_version("shared") == 2
    assert store.head() == 12


async def test_subscription_catches_up_then_follows_live(store: EventStore) -> None:
    await store.append("ep-1", [started("ep-1"), msg("ep-1", 0)])
    seen: list[RecordedEvent] = []
    async with subscribe(store, filter=EventFilter.of(types=[UserMessage])) as events:
        async for event in events:
            seen.append(event)
            if len(seen) == 1:
                await store.append("ep-1", [msg("ep-1", 1)])
                await store.append("ep-2", [started("ep-2"), msg("ep-2", 0)])
            if len(seen) == 3:
                break
    assert [(e.stream_id, e.position) for e in seen] == [("ep-1", 2), ("ep-1", 3), ("ep-2", 5)]


async def test_subscription_without_follow_ends_at_head(store: EventStore) -> None:
    await store.append("ep-1", [msg("ep-1", i) for i in range(30)])
    async with subscribe(store, start_after=10, follow=False, page=7) as events:
        positions = [e.position async for e in events]
    assert positions == list(range(11, 31))


async def test_subscriber_wakes_on_commit_from_another_task(store: EventStore) -> None:
    received = anyio.Event()

    async def consume() -> None:
        async with subscribe(store, idle_timeout=30.0) as events:
            async for _ in events:
                received.set()
                return

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await anyio.sleep(0.05)
            await store.append("ep", [msg("ep", 0)])
            await received.wait()


async def test_slow_consumer_applies_backpressure(store: EventStore) -> None:
    await store.append("ep", [msg("ep", i) for i in range(2000)])
    async with subscribe(store, buffer=8, page=64) as events:
        first = await events.__anext__()
        await anyio.sleep(0.1)  # the reader would run far ahead here if it were unbounded
        stats = events.statistics()  # type: ignore[attr-defined]
        assert stats.current_buffer_used <= 8
        assert stats.tasks_waiting_send == 1
    assert first.position == 1


async def test_consumer_resumes_exactly_at_its_cursor_after_restart(make_store: StoreFactory) -> None:
    store = make_store()
    await store.append("in", [msg("in", i) for i in range(10)])
    handled: list[int] = []

    async def run_consumer(store: EventStore, stop_after: int) -> None:
        async with subscribe(store, consumer="echo", filter=EventFilter.of(streams=["in"]), follow=False) as events:
            async for event in events:
                assert isinstance(event.payload, UserMessage)
                await store.append(
                    "out",
                    [NewEvent(payload=msg("out", event.payload.turn), causation_id=event.event_id)],
                    cursor=CursorUpdate("echo", event.position),
                )
                handled.append(event.position)
                if len(handled) == stop_after:
                    return

    await run_consumer(store, stop_after=4)
    store = make_store()  # a restart, for the file store
    await store.append("in", [msg("in", i) for i in range(10, 12)])
    await run_consumer(store, stop_after=12)
    assert handled == [*range(1, 11), 15, 16]
    outputs = [r.payload.turn for r in store.read_stream("out") if isinstance(r.payload, UserMessage)]
    assert outputs == list(range(12))


async def test_wait_for_head_returns_on_timeout_and_on_commit(store: EventStore) -> None:
    assert await store.wait_for_head(0, 0.01) == 0
    async with anyio.create_task_group() as group:
        group.start_soon(store.append, "ep", [msg("ep", 0)])
        with anyio.fail_after(5):
            assert await store.wait_for_head(0, 10.0) == 1


async def test_summary_counts_types_streams_and_time_span(store: EventStore) -> None:
    await store.append("ep-1", [started("ep-1"), msg("ep-1", 0), msg("ep-1", 1)])
    await store.append("ep-2", [started("ep-2")], cursor=CursorUpdate("c", 1))
    summary = store.summary()
    assert summary.events == 4
    assert summary.by_type == {"episode_started": 2, "user_message": 2}
    assert summary.by_stream == {"ep-1": 3, "ep-2": 1}
    assert summary.cursors == {"c": 1}
    assert summary.first_timestamp is not None
    assert summary.last_timestamp is not None
    assert summary.first_timestamp < summary.last_timestamp


async def test_a_reused_event_id_fails_alone_and_writes_nothing(store: EventStore) -> None:
    await store.append("a", [NewEvent(payload=msg("a", 0), event_id="fixed-id")])
    outcomes: list[str] = []

    async def reuse() -> None:
        try:
            await store.append("b", [msg("b", 0), NewEvent(payload=msg("b", 1), event_id="fixed-id")])
            outcomes.append("written")
        except DuplicateEventError:
            outcomes.append("rejected")

    async def bystander(n: int) -> None:
        await store.append(f"c-{n}", [msg("c", n)])
        outcomes.append("ok")

    async with anyio.create_task_group() as group:
        group.start_soon(bystander, 0)
        group.start_soon(reuse)
        group.start_soon(bystander, 1)
    assert sorted(outcomes) == ["ok", "ok", "rejected"]
    assert store.stream_version("b") == 0
    assert [r.position for r in store.read()] == [1, 2, 3]
