from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentinel_async.clock import ManualClock, SeededIds
from sentinel_async.store import EventStore, MemoryEventStore, SQLiteEventStore

StoreFactory = Callable[[], EventStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the same logical log again on each call (a restart, for the SQLite store)."""
    opened: list[EventStore] = []
    memory = MemoryEventStore(clock=ManualClock(step=0.001), ids=SeededIds(1))

    def factory() -> EventStore:
        if request.param == "memory":
            return memory
        for store in opened:
            store.close()
        store = SQLiteEventStore(tmp_path / "log.sqlite", clock=ManualClock(step=0.001), ids=SeededIds(len(opened)))
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> EventStore:
    return make_store()
