"""A process the crash tests kill with SIGKILL: a many-producer writer, or an echoing consumer."""

from __future__ import annotations

import random
import sys

import anyio

from sentinel_async.bus import subscribe
from sentinel_async.events import NewEvent, UserMessage
from sentinel_async.store import NO_STREAM, CursorUpdate, EventFilter, SQLiteEventStore


async def write(path: str, producers: int, batches_each: int) -> None:
    with SQLiteEventStore(path) as store:

        async def producer(n: int) -> None:
            rng = random.Random(n)
            for i in range(batches_each):
                stream = f"batch-{n}-{i}"
                size = rng.randint(1, 40)
                events = [UserMessage(episode_id=stream, turn=j, content=str(size)) for j in range(size)]
                result = await store.append(stream, events, expected_version=NO_STREAM)
                print(f"acked {stream} {result.positions[0]} {result.positions[-1]}", flush=True)

        async with anyio.create_task_group() as group:
            for n in range(producers):
                group.start_soon(producer, n)


async def echo(path: str) -> None:
    with SQLiteEventStore(path) as store:
        source = EventFilter.of(stream_prefix="batch-")
        async with subscribe(store, consumer="echo", filter=source, follow=False) as events:
            async for event in events:
                reply = NewEvent(payload=UserMessage(episode_id="echo", turn=event.position, content="echo"))
                await store.append("echo", [reply], cursor=CursorUpdate("echo", event.position))
                print(f"echoed {event.position}", flush=True)


if __name__ == "__main__":
    mode, log = sys.argv[1], sys.argv[2]
    if mode == "write":
        anyio.run(write, log, int(sys.argv[3]), int(sys.argv[4]))
    else:
        anyio.run(echo, log)
