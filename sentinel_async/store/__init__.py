"""Event stores: the interface, an SQLite file store and an in-memory store. They know nothing of agents."""

from sentinel_async.store.base import (
    ANY_VERSION,
    NO_STREAM,
    AppendResult,
    CursorUpdate,
    EventFilter,
    EventStore,
    LogSummary,
    StreamAppend,
)
from sentinel_async.store.memory import MemoryEventStore
from sentinel_async.store.sqlite import SQLiteEventStore

__all__ = [
    "ANY_VERSION",
    "NO_STREAM",
    "AppendResult",
    "CursorUpdate",
    "EventFilter",
    "EventStore",
    "LogSummary",
    "MemoryEventStore",
    "SQLiteEventStore",
    "StreamAppend",
]
