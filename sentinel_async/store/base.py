"""The event-store interface, and the transaction logic every backend shares.

A store keeps one totally ordered log. Appends are transactions: events for one or more streams, each with
an optional expected version, plus an optional consumer-cursor update, all committed atomically. Positions
start at 1 and have no gaps; stream versions start at 1 (expected version 0 means "the stream is new").
"""

from __future__ import annotations

import abc
import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Self

import msgspec

from sentinel_async.clock import Clock, IdFactory, RandomIds, SystemClock
from sentinel_async.errors import ConcurrencyError, CursorError
from sentinel_async.events import Event, EventBase, NewEvent, RecordedEvent, event_type_name

ANY_VERSION: None = None
"""Expected version meaning "do not check"."""

NO_STREAM = 0
"""Expected version meaning "the stream must not exist yet"."""


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """Events for one stream inside a transaction."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None = ANY_VERSION


class CursorUpdate(msgspec.Struct, frozen=True):
    """Move a named consumer's cursor to `position` in the same transaction as its output events."""

    consumer: str
    position: int


class AppendResult(msgspec.Struct, frozen=True):
    """Where a transaction's events landed: their positions in order, and each stream's new version."""

    positions: list[int]
    versions: dict[str, int]

    @property
    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a read or a subscription wants. Empty fields match everything."""

    stream_ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    stream_prefix: str | None = None

    @classmethod
    def of(
        cls,
        *,
        streams: Sequence[str] = (),
        types: Sequence[str | type[EventBase]] = (),
        stream_prefix: str | None = None,
    ) -> EventFilter:
        """Build a filter from stream ids, type names or event classes."""
        names = frozenset(t if isinstance(t, str) else event_type_name(t) for t in types)
        return cls(stream_ids=frozenset(streams), types=names, stream_prefix=stream_prefix)

    def matches(self, record: RecordedEvent) -> bool:
        if self.stream_ids and record.stream_id not in self.stream_ids:
            return False
        if self.types and record.type not in self.types:
            return False
        return self.stream_prefix is None or record.stream_id.startswith(self.stream_prefix)


class LogSummary(msgspec.Struct, frozen=True):
    """Counts by type and stream, and the time span of a log."""

    events: int
    head: int
    by_type: dict[str, int]
    by_stream: dict[str, int]
    first_timestamp: float | None
    last_timestamp: float | None
    cursors: dict[str, int]


def as_new_events(events: Sequence[Event | NewEvent]) -> list[NewEvent]:
    """Wrap bare payloads as NewEvents."""
    return [e if isinstance(e, NewEvent) else NewEvent(payload=e) for e in events]


class TransactionBuilder:
    """Validates a transaction against current versions and cursors and turns it into records.

    Backends call it with lookups that see their committed state plus what earlier transactions of the
    same commit group staged, so group commit and single commits behave identically.
    """

    def __init__(self, clock: Clock, ids: IdFactory) -> None:
        self._clock = clock
        self._ids = ids

    def build(
        self,
        appends: Sequence[StreamAppend],
        cursor: CursorUpdate | None,
        head: int,
        stream_version: Callable[[str], int],
        cursor_position: Callable[[str], int],
    ) -> tuple[list[RecordedEvent], dict[str, int]]:
        """Return the records to insert and each touched stream's new version; raise on a conflict."""
        if cursor is not None:
            current = cursor_position(cursor.consumer)
            if cursor.position <= current:
                raise CursorError(
                    f"consumer {cursor.consumer!r} is already at position {current}; a cursor update to "
                    f"{cursor.position} would process those events twice"
                )
        timestamp = self._clock.now()
        records: list[RecordedEvent] = []
        versions: dict[str, int] = {}
        position = head
        for append in appends:
            version = versions.get(append.stream_id)
            if version is None:
                version = stream_version(append.stream_id)
            if append.expected_version is not None and append.expected_version != version:
                raise ConcurrencyError(append.stream_id, append.expected_version, version)
            for new in append.events:
                position += 1
                version += 1
                event_id = new.event_id or self._ids.new_id()
                records.append(
                    RecordedEvent(
                        position=position,
                        stream_id=append.stream_id,
                        version=version,
                        event_id=event_id,
                        timestamp=timestamp,
                        causation_id=new.causation_id,
                        correlation_id=new.correlation_id or event_id,
                        payload=new.payload,
                    )
                )
            versions[append.stream_id] = version
        return records, versions


class HeadNotifier:
    """Wakes waiters, on any thread's event loop, when the head position moves."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify(self) -> None:
        """Wake every waiter (safe from any thread)."""
        waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, is_past: Callable[[], bool], timeout: float) -> None:
        """Return when `is_past()` holds after a notification, or after `timeout` seconds."""
        if is_past():
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        self._waiters.add(entry)
        try:
            if is_past():  # committed between the check and registering
                return
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class EventStore(abc.ABC):
    """An append-only, totally ordered event log with streams, consumer cursors and change notification."""

    # --- writing ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def commit(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        """Atomically append events to one or more streams and optionally move a consumer cursor.

        Returns once the transaction is durable. Raises ConcurrencyError on a stale expected version and
        CursorError on a cursor that does not move forward; then nothing of the transaction is written.
        """

    @abc.abstractmethod
    def commit_sync(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        """`commit` for synchronous callers (scripts, other threads). Do not call it on an event loop."""

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event | NewEvent],
        *,
        expected_version: int | None = ANY_VERSION,
        cursor: CursorUpdate | None = None,
    ) -> AppendResult:
        """Append events to one stream (see `commit`)."""
        append = StreamAppend(stream_id=stream_id, events=as_new_events(events), expected_version=expected_version)
        return await self.commit([append], cursor=cursor)

    async def ack(self, consumer: str, position: int) -> None:
        """Move a consumer's cursor without emitting events."""
        await self.commit([], cursor=CursorUpdate(consumer, position))

    # --- reading ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def read(
        self,
        *,
        after: int = 0,
        to: int | None = None,
        filter: EventFilter | None = None,
        limit: int | None = None,
        skip_invalid: bool = False,
    ) -> Iterator[RecordedEvent]:
        """Events with `after < position <= to` matching `filter`, in position order.

        A record that cannot be decoded raises CorruptEventError naming its position and type, unless
        `skip_invalid` is set, in which case it is skipped.
        """

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        """One stream's events after a version, in order."""
        events = self.read(filter=EventFilter(stream_ids=frozenset([stream_id])))
        return [e for e in events if e.version > after_version]

    @abc.abstractmethod
    def head(self) -> int:
        """The position of the last committed event (0 for an empty log)."""

    @abc.abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """The version of a stream's last event (0 when the stream does not exist)."""

    @abc.abstractmethod
    def cursor(self, consumer: str) -> int:
        """A consumer's committed position (0 when it has none)."""

    @abc.abstractmethod
    def cursors(self) -> dict[str, int]:
        """All consumers' committed positions."""

    @abc.abstractmethod
    async def wait_for_head(self, after: int, timeout: float) -> int:
        """Wait until the head moves past `after` or `timeout` elapses; return the head."""

    def summary(self, *, skip_invalid: bool = False) -> LogSummary:
        """Counts by type and stream, and the time span."""
        by_type: Counter[str] = Counter()
        by_stream: Counter[str] = Counter()
        first: float | None = None
        last: float | None = None
        for record in self.read(skip_invalid=skip_invalid):
            by_type[record.type] += 1
            by_stream[record.stream_id] += 1
            first = record.timestamp if first is None else first
            last = record.timestamp
        return LogSummary(
            events=sum(by_type.values()),
            head=self.head(),
            by_type=dict(by_type),
            by_stream=dict(by_stream),
            first_timestamp=first,
            last_timestamp=last,
            cursors=self.cursors(),
        )

    # --- lifetime -----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Finish pending writes and release the log."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def default_clock_and_ids(clock: Clock | None, ids: IdFactory | None) -> tuple[Clock, IdFactory]:
    """Fill in the wall clock and random ids where none were injected."""
    return clock or SystemClock(), ids or RandomIds()
