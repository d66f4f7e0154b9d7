"""Folding the log into state: the replay API used for debugging, inspection and rebuilding projections."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from sentinel_async.events import RecordedEvent
from sentinel_async.store.base import EventFilter, EventStore

S = TypeVar("S")


class Projection(Protocol):
    """Mutable state rebuilt by applying events in order."""

    def apply(self, event: RecordedEvent) -> None: ...


def fold(events: Iterable[RecordedEvent], initial: S, step: Callable[[S, RecordedEvent], S]) -> S:
    """Reduce events in order: `state = step(state, event)` for each event."""
    state = initial
    for event in events:
        state = step(state, event)
    return state


def fold_stream(store: EventStore, stream_id: str, initial: S, step: Callable[[S, RecordedEvent], S]) -> S:
    """Fold one stream of a store into a state."""
    return fold(store.read(filter=EventFilter.of(streams=[stream_id])), initial, step)


P = TypeVar("P", bound=Projection)


def project(
    store: EventStore,
    projection: P,
    *,
    filter: EventFilter | None = None,
    after: int = 0,
    to: int | None = None,
) -> P:
    """Apply every matching event of a store, in order, to a projection and return it."""
    for event in store.read(after=after, to=to, filter=filter):
        projection.apply(event)
    return projection
