"""Subscriptions: async iterators over the events that match a filter, catch-up then live.

    async with subscribe(store, consumer="controller", filter=EventFilter.of(types=[EpisodeFinished])) as events:
        async for event in events:
            outputs = handle(event)
            await store.commit(outputs, cursor=CursorUpdate("controller", event.position))

A subscription starts after the consumer's committed cursor (or `start_after`), reads pages from the store,
and hands events over through a bounded buffer, so a slow consumer makes the reader wait instead of growing
memory. When it has caught up it waits for the store's commit notification (same process) or polls (a log
opened read-only by another process). The reader is a task in the subscription's own anyio task group.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from sentinel_async.events import RecordedEvent
from sentinel_async.store.base import EventFilter, EventStore


@asynccontextmanager
async def subscribe(
    store: EventStore,
    *,
    consumer: str | None = None,
    start_after: int | None = None,
    filter: EventFilter | None = None,
    buffer: int = 256,
    page: int = 1024,
    follow: bool = True,
    idle_timeout: float = 0.25,
    skip_invalid: bool = False,
) -> AsyncIterator[AsyncIterator[RecordedEvent]]:
    """Yield an async iterator over matching events after the consumer's cursor, following live commits.

    With `follow=False` the iterator ends once it has caught up with the head. The consumer is responsible
    for committing its cursor (with its outputs, see `EventStore.commit`) after handling each event.
    """
    position = start_after if start_after is not None else (store.cursor(consumer) if consumer else 0)
    send, receive = anyio.create_memory_object_stream[RecordedEvent](max_buffer_size=buffer)
    async with anyio.create_task_group() as group:
        group.start_soon(_pump, store, send, position, filter, page, follow, idle_timeout, skip_invalid)
        try:
            yield receive
        finally:
            group.cancel_scope.cancel()
            receive.close()


async def _pump(
    store: EventStore,
    send: MemoryObjectSendStream[RecordedEvent],
    position: int,
    filter: EventFilter | None,
    page: int,
    follow: bool,
    idle_timeout: float,
    skip_invalid: bool,
) -> None:
    with send, contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        while True:
            head = store.head()
            if head > position:
                # Positions have no gaps, so a window of `page` positions holds at most `page` events.
                window_end = min(head, position + page)
                batch = list(store.read(after=position, to=window_end, filter=filter, skip_invalid=skip_invalid))
                for record in batch:
                    await send.send(record)
                position = window_end
                await anyio.lowlevel.checkpoint()
                continue
            if not follow:
                return
            await store.wait_for_head(position, idle_timeout)


async def wait_until(store: EventStore, position: int, timeout: float = math.inf) -> int:
    """Wait until the log's head reaches `position`; returns the head."""
    with anyio.move_on_after(timeout):
        while store.head() < position:
            await store.wait_for_head(store.head(), 0.25)
    return store.head()
