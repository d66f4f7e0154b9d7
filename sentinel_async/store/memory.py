"""An in-memory event store: the same contract as the SQLite store, without a file."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from sentinel_async.clock import Clock, IdFactory
from sentinel_async.errors import DuplicateEventError, StoreClosedError
from sentinel_async.events import RecordedEvent
from sentinel_async.store.base import (
    AppendResult,
    CursorUpdate,
    EventFilter,
    EventStore,
    HeadNotifier,
    StreamAppend,
    TransactionBuilder,
    default_clock_and_ids,
)


class MemoryEventStore(EventStore):
    """Keeps every event in a list; thread-safe; nothing survives the process."""

    def __init__(self, *, clock: Clock | None = None, ids: IdFactory | None = None) -> None:
        self._builder = TransactionBuilder(*default_clock_and_ids(clock, ids))
        self._events: list[RecordedEvent] = []
        self._positions: list[int] = []
        self._versions: dict[str, int] = {}
        self._cursors: dict[str, int] = {}
        self._event_ids: set[str] = set()
        self._lock = threading.Lock()
        self._notifier = HeadNotifier()
        self._closed = False

    async def commit(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        return self.commit_sync(appends, cursor=cursor)

    def commit_sync(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        with self._lock:
            self._check_open()
            records, versions = self._builder.build(
                appends,
                cursor,
                self.head(),
                lambda stream: self._versions.get(stream, 0),
                lambda consumer: self._cursors.get(consumer, 0),
            )
            new_ids = {r.event_id for r in records}
            if len(new_ids) < len(records) or not new_ids.isdisjoint(self._event_ids):
                raise DuplicateEventError("append rejected by the log: an event id is reused")
            self._event_ids.update(new_ids)
            self._events.extend(records)
            self._positions.extend(r.position for r in records)
            self._versions.update(versions)
            if cursor is not None:
                self._cursors[cursor.consumer] = cursor.position
        if records:
            self._notifier.notify()
        return AppendResult([r.position for r in records], versions)

    def read(
        self,
        *,
        after: int = 0,
        to: int | None = None,
        filter: EventFilter | None = None,
        limit: int | None = None,
        skip_invalid: bool = False,
    ) -> Iterator[RecordedEvent]:
        self._check_open()
        with self._lock:
            start = bisect.bisect_right(self._positions, after)
            end = len(self._events) if to is None else bisect.bisect_right(self._positions, to)
            window = self._events[start:end]
        count = 0
        for record in window:
            if limit is not None and count >= limit:
                return
            if filter is None or filter.matches(record):
                count += 1
                yield record

    def head(self) -> int:
        return self._positions[-1] if self._positions else 0

    def stream_version(self, stream_id: str) -> int:
        return self._versions.get(stream_id, 0)

    def cursor(self, consumer: str) -> int:
        return self._cursors.get(consumer, 0)

    def cursors(self) -> dict[str, int]:
        with self._lock:
            return dict(self._cursors)

    async def wait_for_head(self, after: int, timeout: float) -> int:
        await self._notifier.wait(lambda: self.head() > after, timeout)
        return self.head()

    def close(self) -> None:
        self._closed = True
        self._notifier.notify()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the in-memory event store is closed")
