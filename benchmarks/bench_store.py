"""Event-store benchmark: the store's public API against raw sqlite3 + msgspec, side by side in one run.

    python benchmarks/bench_store.py            # full sizes (about a minute on 2 cores)
    python benchmarks/bench_store.py --quick    # smaller sizes

Prints, on the same schema and event mix:
1. durable appends from many concurrent producers through `SQLiteEventStore.append` vs raw `executemany`
   in transactions of 1,000 rows (WAL, synchronous=FULL); goal >= 0.5x;
2. replay (read in order + typed decode) through `store.read()` vs a raw scan + msgspec decode; goal >= 0.7x;
3. in-process delivery latency, durable commit -> subscriber, p50/p99; goal p99 < 2 ms;
4. cross-process tail latency (a read-only reader in another process polling every 1 ms), p50/p99.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import msgspec

from sentinel_async.bus import subscribe
from sentinel_async.clock import SeededIds
from sentinel_async.events import (
    AssistantMessage,
    Event,
    NewEvent,
    RecordedEvent,
    ToolResult,
    UserMessage,
    encode_record,
)
from sentinel_async.messages import TokenTrace, ToolCall
from sentinel_async.store import SQLiteEventStore, StreamAppend
from sentinel_async.store.sqlite import _INSERT


def event_mix(rng: random.Random, episode: str, turn: int) -> Event:
    """A realistic mix: user turns, assistant turns with tool calls and token traces, tool results."""
    kind = turn % 3
    if kind == 0:
        return UserMessage(episode_id=episode, turn=turn, content="I want to return the desk lamp " * 3)
    if kind == 1:
        ids = [rng.randrange(2000) for _ in range(120)]
        return AssistantMessage(
            episode_id=episode,
            turn=turn,
            tool_calls=[ToolCall(id=f"c{turn}", name="get_order_details", arguments={"order_id": "#W2378156"})],
            tokens=TokenTrace(prompt_ids=ids[:80], sampled_ids=ids[80:], logprobs=[-0.1] * 40),
            policy_version=3,
        )
    return ToolResult(
        episode_id=episode,
        turn=turn,
        call_id=f"c{turn - 1}",
        name="get_order_details",
        content='{"order_id": "#W2378156", "status": "delivered", "items": []}' * 4,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. appends ---------------------------------------------------------------------------------------------


async def store_appends(path: Path, producers: int, per_producer: int, batch: int) -> float:
    rng = random.Random(0)
    payloads = [[event_mix(rng, f"ep-{p}", t) for t in range(per_producer)] for p in range(producers)]
    with SQLiteEventStore(path) as store:  # production defaults: wall clock, random ids
        start = time.perf_counter()

        async def produce(p: int) -> None:
            events = payloads[p]
            for i in range(0, len(events), batch):
                await store.append(f"ep-{p}", events[i : i + batch])

        async with anyio.create_task_group() as group:
            for p in range(producers):
                group.start_soon(produce, p)
        elapsed = time.perf_counter() - start
    return producers * per_producer / elapsed


def raw_appends(path: Path, total: int) -> float:
    """The ceiling: the same rows, pre-built, inserted by raw executemany 1,000 per durable transaction."""
    rng = random.Random(0)
    with SQLiteEventStore(path):  # the same schema
        pass
    ids = SeededIds(0)
    records = [
        RecordedEvent(
            position=i + 1,
            stream_id=f"ep-{i % 64}",
            version=i // 64 + 1,
            event_id=ids.new_id(),
            timestamp=time.time(),
            causation_id=None,
            correlation_id="c",
            payload=event_mix(rng, f"ep-{i % 64}", i // 64),
        )
        for i in range(total)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    for i in range(0, total, 1000):
        chunk = records[i : i + 1000]
        rows = [
            (
                r.position,
                r.event_id,
                r.stream_id,
                r.version,
                r.type,
                r.timestamp,
                None,
                r.correlation_id,
                encode_record(r),
            )
            for r in chunk
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return total / elapsed


# --- 2. replay ----------------------------------------------------------------------------------------------


def replay(path: Path) -> tuple[float, float, int]:
    decoder = msgspec.json.Decoder(RecordedEvent)
    gc.disable()
    try:
        with SQLiteEventStore(path, read_only=True) as store:
            start = time.perf_counter()
            count = sum(1 for _ in store.read())
            ours = count / (time.perf_counter() - start)
        conn = sqlite3.connect(path)
        start = time.perf_counter()
        rows = conn.execute("SELECT body FROM events ORDER BY position")
        raw = sum(1 for (body,) in rows if decoder.decode(body) is not None)
        raw_rate = raw / (time.perf_counter() - start)
        conn.close()
    finally:
        gc.enable()
    return ours, raw_rate, count


# --- 3. in-process latency ----------------------------------------------------------------------------------


async def in_process_latency(path: Path, events: int) -> list[float]:
    committed: dict[int, float] = {}
    latencies: list[float] = []

    def on_commit(head: int) -> None:
        committed[head] = time.perf_counter()

    with SQLiteEventStore(path, on_commit=on_commit) as store:
        async with subscribe(store) as stream, anyio.create_task_group() as group:

            async def produce() -> None:
                rng = random.Random(1)
                for t in range(events):
                    await store.append("lat", [event_mix(rng, "lat", t)])
                    await anyio.sleep(0.002)

            group.start_soon(produce)
            async for record in stream:
                latencies.append(time.perf_counter() - committed[record.position])
                if record.position == events:
                    break
    return latencies


# --- 4. cross-process tail ----------------------------------------------------------------------------------

_TAIL = """
import sys, time, anyio
from sentinel_async.bus import subscribe
from sentinel_async.store import SQLiteEventStore
async def main():
    store = SQLiteEventStore(sys.argv[1], read_only=True, poll_interval=0.001)
    print("ready", flush=True)
    async with subscribe(store, idle_timeout=0.001) as events:
        async for e in events:
            print(e.position, time.time(), flush=True)
            if e.position == int(sys.argv[2]):
                return
anyio.run(main)
"""


def cross_process_latency(path: Path, events: int) -> list[float]:
    committed: dict[int, float] = {}

    def on_commit(head: int) -> None:
        committed[head] = time.time()

    with SQLiteEventStore(path, on_commit=on_commit) as store:
        store.commit_sync(
            [StreamAppend(stream_id="warm", events=[NewEvent(payload=event_mix(random.Random(), "w", 0))])]
        )
        with subprocess.Popen(
            [sys.executable, "-c", _TAIL, str(path), str(events + 1)], stdout=subprocess.PIPE, text=True
        ) as reader:
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "ready"
            rng = random.Random(2)
            for t in range(events):
                store.commit_sync(
                    [StreamAppend(stream_id="tail", events=[NewEvent(payload=event_mix(rng, "tail", t))])]
                )
                time.sleep(0.003)
            out = reader.stdout.read()  # not communicate(): it would skip lines already buffered
            reader.wait(timeout=60)
    received = {int(p): float(t) for p, t in (line.split() for line in out.splitlines())}
    return [received[p] - committed[p] for p in range(2, events + 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    producers, per_producer = (64, 400) if args.quick else (256, 200)
    total = producers * per_producer
    latency_events = 300 if args.quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw_rate = raw_appends(folder / "raw.sqlite", total)
        single = anyio.run(store_appends, folder / "one.sqlite", producers, per_producer, 1)
        batched = anyio.run(store_appends, folder / "four.sqlite", producers, per_producer, 4)
        ours_replay, raw_replay, count = replay(folder / "one.sqlite")
        local = anyio.run(in_process_latency, folder / "lat.sqlite", latency_events)
        remote = cross_process_latency(folder / "tail.sqlite", latency_events)

    print(f"sentinel-async event store benchmark ({total} events, {producers} concurrent producers, durable)")
    print(f"{'measure':<58} {'store':>12} {'raw':>12} {'ratio':>7}  goal")
    print(
        f"{'appends/s, 1 event per append vs executemany x1000':<58} {single:>12,.0f} {raw_rate:>12,.0f} "
        f"{single / raw_rate:>6.2f}x  >= 0.5x"
    )
    print(
        f"{'appends/s, 4 events per append vs executemany x1000':<58} {batched:>12,.0f} {raw_rate:>12,.0f} "
        f"{batched / raw_rate:>6.2f}x  >= 0.5x"
    )
    print(
        f"{f'replay events/s ({count} events), read+decode vs raw scan':<58} {ours_replay:>12,.0f} "
        f"{raw_replay:>12,.0f} {ours_replay / raw_replay:>6.2f}x  >= 0.7x"
    )
    ms = 1000.0
    print(
        f"in-process commit->subscriber latency: p50 {statistics.median(local) * ms:.3f} ms, "
        f"p99 {percentile(local, 0.99) * ms:.3f} ms (goal p99 < 2 ms; {len(local)} events)"
    )
    print(
        f"cross-process commit->tail latency (1 ms polling): p50 {statistics.median(remote) * ms:.3f} ms, "
        f"p99 {percentile(remote, 0.99) * ms:.3f} ms ({len(remote)} events)"
    )


if __name__ == "__main__":
    main()
