"""What only a file-backed log must do: survive restarts and SIGKILL, refuse a second writer, be tailed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from sentinel_async.bus import subscribe
from sentinel_async.errors import CorruptEventError, StoreLockedError, StoreOpenError
from sentinel_async.events import UserMessage
from sentinel_async.store import SQLiteEventStore

WORKER = Path(__file__).with_name("crash_worker.py")


def msg(turn: int) -> UserMessage:
    return UserMessage(episode_id="ep", turn=turn, content="hello")


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_events_survive_a_clean_restart(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with SQLiteEventStore(path) as store:
        store.commit_sync([])
        anyio.run(store.append, "ep", [msg(0), msg(1)])
    with SQLiteEventStore(path) as store:
        assert store.head() == 2
        assert store.stream_version("ep") == 2
        assert [r.payload for r in store.read()] == [msg(0), msg(1)]


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with SQLiteEventStore(path):
        code = "import sys; from sentinel_async.store import SQLiteEventStore; SQLiteEventStore(sys.argv[1])"
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
        assert proc.returncode != 0
        assert "StoreLockedError" in proc.stderr
        assert "open for writing in another process" in proc.stderr
        with pytest.raises(StoreLockedError):
            SQLiteEventStore(path)
    SQLiteEventStore(path).close()  # released on close


def test_another_process_tails_the_log_read_only(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    code = (
        "import sys, anyio\n"
        "from sentinel_async.bus import subscribe\n"
        "from sentinel_async.store import SQLiteEventStore\n"
        "async def main():\n"
        "    store = SQLiteEventStore(sys.argv[1], read_only=True, poll_interval=0.002)\n"
        "    print('ready', flush=True)\n"
        "    async with subscribe(store) as events:\n"
        "        async for e in events:\n"
        "            print(e.position, e.payload.turn, flush=True)\n"
        "            if e.position == 5: return\n"
        "anyio.run(main)\n"
    )
    with SQLiteEventStore(path) as store:
        store.commit_sync([])  # the file exists before the reader opens it
        anyio.run(store.append, "ep", [msg(0), msg(1)])
        with subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True) as reader:
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "ready"
            for turn in range(2, 5):
                anyio.run(store.append, "ep", [msg(turn)])
                time.sleep(0.02)
            lines = [reader.stdout.readline().strip() for _ in range(5)]  # (communicate() would skip buffered lines)
            assert reader.wait(timeout=30) == 0
    assert lines == [f"{p} {p - 1}" for p in range(1, 6)]
    with SQLiteEventStore(path, read_only=True) as reader_store, pytest.raises(StoreOpenError, match="read-only"):
        anyio.run(reader_store.append, "ep", [msg(9)])


def test_bad_paths_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="no event log at"):
        SQLiteEventStore(tmp_path / "missing.sqlite", read_only=True)
    with pytest.raises(StoreOpenError, match="does not exist"):
        SQLiteEventStore(tmp_path / "no-such-dir" / "log.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreOpenError, match="event log"):
        SQLiteEventStore(junk)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreOpenError, match="not a sentinel event log"):
        SQLiteEventStore(other)


def test_corrupt_and_unknown_records_name_their_position_and_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with SQLiteEventStore(path) as store:
        anyio.run(store.append, "ep", [msg(i) for i in range(4)])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE events SET body = ? WHERE position = 2", (b'{"broken json',))
    body = conn.execute("SELECT body FROM events WHERE position = 3").fetchone()[0]
    conn.execute(
        "UPDATE events SET type = 'from_the_future', body = ? WHERE position = 3",
        (body.replace(b'"type":"user_message"', b'"type":"from_the_future"'),),
    )
    conn.commit()
    conn.close()
    with SQLiteEventStore(path, read_only=True) as store:
        with pytest.raises(CorruptEventError, match=r"position 2 \(type 'user_message'\)"):
            list(store.read())
        with pytest.raises(CorruptEventError, match=r"position 3 \(type 'from_the_future'\)"):
            list(store.read(after=2))
        assert [r.position for r in store.read(skip_invalid=True)] == [1, 4]


@pytest.mark.parametrize("attempt", range(4))
def test_sigkill_mid_append_leaves_whole_batches_and_every_acknowledged_one(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "log.sqlite"
    acked: dict[str, tuple[int, int]] = {}
    target = 50 + 150 * attempt
    with start_worker("write", str(path), "16", "100000") as worker:
        assert worker.stdout is not None
        for line in worker.stdout:
            _, stream, first, last = line.split()
            acked[stream] = (int(first), int(last))
            if len(acked) >= target:
                break
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        for line in worker.stdout:  # acks printed before the kill landed
            if line.startswith("acked"):
                _, stream, first, last = line.split()
                acked[stream] = (int(first), int(last))

    with SQLiteEventStore(path) as store:  # reopening for writing also proves the lock was released
        records = list(store.read())
        assert [r.position for r in records] == list(range(1, store.head() + 1)), "positions must have no gaps"
        assert len({r.event_id for r in records}) == len(records)
        per_stream: Counter[str] = Counter(r.stream_id for r in records)
        for record in records:
            assert isinstance(record.payload, UserMessage)
            assert per_stream[record.stream_id] == int(record.payload.content), "a batch was cut in half"
        for stream, (start, end) in acked.items():
            stored = store.read_stream(stream)
            assert [r.position for r in stored] == list(range(start, end + 1)), f"acknowledged {stream} lost"


def test_killed_consumer_resumes_without_losing_or_repeating_work(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with start_worker("write", str(path), "4", "25") as writer:
        assert writer.wait(timeout=60) == 0
    with SQLiteEventStore(path, read_only=True) as store:
        inputs = store.head()
    for kill_after in (40, 150, 400):
        with start_worker("echo", str(path)) as consumer:
            assert consumer.stdout is not None
            for count, _ in enumerate(consumer.stdout, start=1):
                if count >= kill_after:
                    break
            os.kill(consumer.pid, signal.SIGKILL)
            consumer.wait()
    with start_worker("echo", str(path)) as consumer:
        assert consumer.wait(timeout=120) == 0
    with SQLiteEventStore(path, read_only=True) as store:
        echoed = [r.payload.turn for r in store.read_stream("echo") if isinstance(r.payload, UserMessage)]
        assert sorted(echoed) == list(range(1, inputs + 1)), "every input echoed exactly once"
        assert store.cursor("echo") == inputs


async def test_in_process_subscriber_sees_file_commits(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "log.sqlite") as store:
        async with subscribe(store, idle_timeout=30) as events:
            await store.append("ep", [msg(0)])
            with anyio.fail_after(5):
                event = await events.__anext__()
        assert event.position == 1
