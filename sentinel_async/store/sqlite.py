"""The SQLite event store: one file, WAL, durable on return, one writer thread with group commit.

Producers queue transactions; the writer thread takes everything queued, runs each transaction in its own
savepoint inside one SQLite transaction (so a conflicting one fails alone), commits once (one fsync for the
whole group, `synchronous=FULL`) and only then resolves the producers' futures and wakes subscribers.
A lock file next to the log lets one process write; other processes open it read-only and tail it by polling.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock
import msgspec
import sqlite_utils

from sentinel_async.clock import Clock, IdFactory
from sentinel_async.errors import (
    CorruptEventError,
    DuplicateEventError,
    SentinelError,
    StoreClosedError,
    StoreLockedError,
    StoreOpenError,
)
from sentinel_async.events import RecordedEvent, decode_record, encode_record
from sentinel_async.store.base import (
    AppendResult,
    CursorUpdate,
    EventFilter,
    EventStore,
    HeadNotifier,
    LogSummary,
    StreamAppend,
    TransactionBuilder,
    default_clock_and_ids,
)

SCHEMA_VERSION = 1
_PAGE = 1000
_MAX_GROUP = 1024
_INSERT = (
    "INSERT INTO events (position, event_id, stream_id, version, type, timestamp, causation_id, "
    "correlation_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_CURSOR = (
    "INSERT INTO cursors (consumer, position) VALUES (?, ?) "
    "ON CONFLICT(consumer) DO UPDATE SET position = excluded.position"
)


class _Request:
    """One transaction waiting for the writer, answered through an asyncio or a concurrent future."""

    __slots__ = ("appends", "cursor", "future", "loop", "sync_future")

    def __init__(self, appends: Sequence[StreamAppend], cursor: CursorUpdate | None, *, is_async: bool) -> None:
        self.appends = appends
        self.cursor = cursor
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[AppendResult] | None = None
        self.sync_future: concurrent.futures.Future[AppendResult] | None = None
        if is_async:
            self.loop = asyncio.get_running_loop()
            self.future = self.loop.create_future()
        else:
            self.sync_future = concurrent.futures.Future()

    def start(self) -> bool:
        """False when the caller gave up (cancelled) before the writer reached it: then it is not written."""
        if self.sync_future is not None:
            return self.sync_future.set_running_or_notify_cancel()
        return self.future is not None and not self.future.cancelled()


def _settle(batch: list[tuple[asyncio.Future[AppendResult], AppendResult | BaseException]]) -> None:
    for future, outcome in batch:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


_STOP = object()
_page_decoder = msgspec.json.Decoder(list[RecordedEvent])


def _decode_page(rows: list[tuple[int, str, bytes]], skip_invalid: bool) -> list[RecordedEvent]:
    """Decode a page of bodies in one msgspec call; on a bad record, find it and name it (or skip it)."""
    try:
        records: list[RecordedEvent] = _page_decoder.decode(b"[" + b",".join(row[2] for row in rows) + b"]")
        return records
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    records = []
    for position, event_type, body in rows:
        try:
            records.append(decode_record(body))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not skip_invalid:
                raise CorruptEventError(position, event_type, str(exc)) from None
    return records


class SQLiteEventStore(EventStore):
    """An event log in one SQLite file. `read_only=True` opens an existing log for reading and tailing.

    `on_commit(head)` is called on the writer thread after each durable group commit (for metrics).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        poll_interval: float = 0.005,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.poll_interval = poll_interval
        self._on_commit = on_commit
        self._builder = TransactionBuilder(*default_clock_and_ids(clock, ids))
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._notifier = HeadNotifier()
        self._closed = False
        self._lock: filelock.BaseFileLock | None = None
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        if read_only:
            if not self.path.is_file():
                raise StoreOpenError(f"no event log at {self.path}: check the path")
            self._check_schema(self._reader())
            return
        self._open_for_writing()

    # --- opening ------------------------------------------------------------------------------------------

    def _open_for_writing(self) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            raise StoreOpenError(f"cannot create an event log at {self.path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise StoreOpenError(f"cannot write the event log at {self.path}: permission denied")
        lock = filelock.FileLock(f"{self.path}.lock", timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StoreLockedError(
                f"the event log {self.path} is open for writing in another process; stop that process, or "
                "open the log read-only (for the CLI, `sentinel log` commands open logs read-only)"
            ) from None
        self._lock = lock
        try:
            conn = self._connect(write=True)
            self._create_schema(conn)
            self._head = int(conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0])
        except BaseException:
            lock.release()
            raise
        self._versions: dict[str, int] = {}
        self._cursor_cache: dict[str, int] = dict(conn.execute("SELECT consumer, position FROM cursors"))
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="sentinel-log-writer")
        self._writer.daemon = True
        self._writer.start()

    def _connect(self, *, write: bool) -> sqlite3.Connection:
        try:
            if write:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            else:
                conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
            conn.execute("PRAGMA busy_timeout=5000")
            return conn
        except sqlite3.DatabaseError as exc:
            raise StoreOpenError(f"cannot open {self.path} as an event log: {exc}") from None

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        try:
            db = sqlite_utils.Database(conn)
            tables = set(db.table_names())
        except sqlite3.DatabaseError as exc:
            raise StoreOpenError(f"{self.path} is not an SQLite event log: {exc}") from None
        if "events" not in tables:
            if tables - {"meta", "cursors"}:
                raise StoreOpenError(f"{self.path} is an SQLite file but not a sentinel event log")
            with conn:
                db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
                db.table("meta").insert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, replace=True)
                db.table("events").create(
                    {
                        "position": int,
                        "event_id": str,
                        "stream_id": str,
                        "version": int,
                        "type": str,
                        "timestamp": float,
                        "causation_id": str,
                        "correlation_id": str,
                        "body": bytes,
                    },
                    pk="position",
                    not_null=["event_id", "stream_id", "version", "type", "timestamp", "body"],
                )
                db.table("events").create_index(["event_id"], unique=True)
                db.table("events").create_index(["stream_id", "version"], unique=True)
                db.table("events").create_index(["type", "position"])
                db.table("events").create_index(["correlation_id"])
                db.table("cursors").create({"consumer": str, "position": int}, pk="consumer", if_not_exists=True)
        self._check_schema(conn)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreOpenError(f"{self.path} is not a sentinel event log: {exc}") from None
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreOpenError(
                f"{self.path} was written by a newer sentinel-async (log schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}): upgrade sentinel-async"
            )

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(write=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # --- writing ------------------------------------------------------------------------------------------

    def _submit(self, request: _Request) -> None:
        self._check_open()
        if self.read_only:
            raise StoreOpenError(f"the event log {self.path} was opened read-only")
        self._queue.put(request)

    async def commit(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        request = _Request(appends, cursor, is_async=True)
        self._submit(request)
        assert request.future is not None
        return await request.future

    def commit_sync(self, appends: Sequence[StreamAppend], *, cursor: CursorUpdate | None = None) -> AppendResult:
        request = _Request(appends, cursor, is_async=False)
        self._submit(request)
        assert request.sync_future is not None
        return request.sync_future.result()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            group: list[_Request] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Request) and item.start():
                    group.append(item)
                if len(group) >= _MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit_group(conn, group)
        with contextlib.suppress(sqlite3.Error):  # fold the WAL back into the file on a clean close
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Request]) -> None:
        """Validate every transaction in Python, write them all with one executemany, commit (one fsync).

        A transaction that fails validation fails alone. If SQLite itself rejects a row (a reused event id),
        the group is rolled back and its transactions are retried one by one, so only the culprit fails.
        """
        try:
            self._write_group(conn, group)
        except sqlite3.IntegrityError:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for request in group:
                try:
                    self._write_group(conn, [request])
                except sqlite3.IntegrityError as exc:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    rejected = DuplicateEventError(f"append rejected by the log: an event id is reused ({exc})")
                    self._answer([request], [rejected])
                except BaseException as exc:
                    self._fail(conn, [request], exc)
        except BaseException as exc:  # an I/O error, a full disk: nothing of the group was written
            self._fail(conn, group, exc)

    def _write_group(self, conn: sqlite3.Connection, group: list[_Request]) -> None:
        staged_versions: dict[str, int] = {}
        staged_cursors: dict[str, int] = {}
        outcomes: list[AppendResult | BaseException] = []
        rows: list[tuple[object, ...]] = []
        head = self._head

        def version_of(stream: str) -> int:
            if stream in staged_versions:
                return staged_versions[stream]
            return self._committed_version(conn, stream)

        def cursor_of(consumer: str) -> int:
            return staged_cursors.get(consumer, self._cursor_cache.get(consumer, 0))

        for request in group:
            try:
                records, versions = self._builder.build(request.appends, request.cursor, head, version_of, cursor_of)
            except SentinelError as exc:
                outcomes.append(exc)
                continue
            rows.extend(
                (r.position, r.event_id, r.stream_id, r.version, r.type, r.timestamp, r.causation_id,
                 r.correlation_id, encode_record(r))
                for r in records
            )  # fmt: skip
            head += len(records)
            staged_versions.update(versions)
            if request.cursor is not None:
                staged_cursors[request.cursor.consumer] = request.cursor.position
            outcomes.append(AppendResult([r.position for r in records], versions))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT, rows)
        conn.executemany(_UPSERT_CURSOR, staged_cursors.items())
        conn.execute("COMMIT")
        self._versions.update(staged_versions)
        self._cursor_cache.update(staged_cursors)
        moved = head != self._head
        self._head = head
        self._answer(group, outcomes)
        if moved:
            if self._on_commit is not None:
                self._on_commit(head)
            self._notifier.notify()

    def _fail(self, conn: sqlite3.Connection, group: list[_Request], exc: BaseException) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        failure = SentinelError(f"writing to the event log {self.path} failed: {exc}; nothing was written")
        self._answer(group, [failure] * len(group))

    @staticmethod
    def _answer(group: list[_Request], outcomes: Sequence[AppendResult | BaseException]) -> None:
        """Resolve futures: one wake-up per event loop for the whole group, not one per request."""
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[AppendResult], Any]]] = {}
        for request, outcome in zip(group, outcomes, strict=True):
            if request.sync_future is not None:
                if isinstance(outcome, BaseException):
                    request.sync_future.set_exception(outcome)
                else:
                    request.sync_future.set_result(outcome)
            elif request.loop is not None and request.future is not None:
                per_loop.setdefault(request.loop, []).append((request.future, outcome))
        for loop, batch in per_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, batch)

    def _committed_version(self, conn: sqlite3.Connection, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            row = conn.execute("SELECT max(version) FROM events WHERE stream_id = ?", (stream,)).fetchone()
            version = int(row[0] or 0)
            self._versions[stream] = version
        return version

    # --- reading ------------------------------------------------------------------------------------------

    def read(
        self,
        *,
        after: int = 0,
        to: int | None = None,
        filter: EventFilter | None = None,
        limit: int | None = None,
        skip_invalid: bool = False,
    ) -> Iterator[RecordedEvent]:
        conn = self._reader()
        where = ["position > ?"]
        base_params: list[object] = []
        if to is not None:
            where.append("position <= ?")
            base_params.append(to)
        if filter is not None:
            if filter.stream_ids:
                where.append(f"stream_id IN ({','.join('?' * len(filter.stream_ids))})")
                base_params.extend(sorted(filter.stream_ids))
            if filter.types:
                where.append(f"type IN ({','.join('?' * len(filter.types))})")
                base_params.extend(sorted(filter.types))
            if filter.stream_prefix is not None:
                where.append("substr(stream_id, 1, ?) = ?")
                base_params.extend([len(filter.stream_prefix), filter.stream_prefix])
        sql = f"SELECT position, type, body FROM events WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"
        remaining = limit
        cursor_position = after
        while remaining is None or remaining > 0:
            page = _PAGE if remaining is None else min(_PAGE, remaining)
            rows = conn.execute(sql, [cursor_position, *base_params, page]).fetchall()
            yield from _decode_page(rows, skip_invalid)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < page:
                return
            cursor_position = rows[-1][0]

    def head(self) -> int:
        if not self.read_only:
            return self._head
        row = self._reader().execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        return int(row[0])

    def stream_version(self, stream_id: str) -> int:
        row = (
            self._reader()
            .execute("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?", (stream_id,))
            .fetchone()
        )
        return int(row[0])

    def cursor(self, consumer: str) -> int:
        row = self._reader().execute("SELECT position FROM cursors WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    def cursors(self) -> dict[str, int]:
        return dict(self._reader().execute("SELECT consumer, position FROM cursors ORDER BY consumer"))

    async def wait_for_head(self, after: int, timeout: float) -> int:
        if not self.read_only:
            await self._notifier.wait(lambda: self._head > after, timeout)
            return self._head
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            head = self.head()
            if head > after or loop.time() >= deadline:
                return head
            await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - loop.time())))

    def summary(self, *, skip_invalid: bool = False) -> LogSummary:
        conn = self._reader()
        by_type = dict(conn.execute("SELECT type, count(*) FROM events GROUP BY type ORDER BY type"))
        by_stream = dict(conn.execute("SELECT stream_id, count(*) FROM events GROUP BY stream_id ORDER BY 1"))
        first, last = conn.execute("SELECT min(timestamp), max(timestamp) FROM events").fetchone()
        return LogSummary(
            events=sum(by_type.values()),
            head=self.head(),
            by_type=by_type,
            by_stream=by_stream,
            first_timestamp=first,
            last_timestamp=last,
            cursors=self.cursors(),
        )

    # --- lifetime -----------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
        self._closed = True
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        if self._lock is not None:
            self._lock.release()
        self._notifier.notify()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the event log {self.path} is closed")
