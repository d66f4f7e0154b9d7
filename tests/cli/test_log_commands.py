"""`sentinel log ...` on the committed fixture and on broken input."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from sentinel_async.cli import main
from sentinel_async.events import decode_record

FIXTURE = Path(__file__).parent.parent / "fixtures" / "log-v1.sqlite"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    copy = tmp_path / "events.sqlite"
    shutil.copy(FIXTURE, copy)
    return copy


def test_summary_counts_types_streams_and_cursors(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "summary", str(log.parent)]) == 0  # a run folder works too
    out = capsys.readouterr().out
    assert "events: 15 (head position 15)" in out
    assert "(14.0 s)" in out
    assert "ep-1" in out
    assert "fixture-consumer" in out


def test_show_filters_by_type_stream_and_range(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "show", str(log), "--stream", "ep-1", "--type", "user_message"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "[turn 1] user: Please cancel order #W1." in lines[0]
    assert main(["log", "show", str(log), "--from", "5", "--to", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["5", "6"]
    assert 'cancel_order({"order_id": "#W1"})' in lines[0]


def test_show_json_and_export_give_decodable_lines(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["log", "show", str(log), "--json", "--limit", "3"]) == 0
    shown = [decode_record(line) for line in capsys.readouterr().out.splitlines()]
    assert [r.position for r in shown] == [1, 2, 3]
    out = tmp_path / "export.jsonl"
    assert main(["log", "export", str(log), "-o", str(out)]) == 0
    exported = [decode_record(line) for line in out.read_bytes().splitlines()]
    assert len(exported) == 15
    assert exported[:3] == shown


def test_follow_prints_until_the_requested_position(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "follow", str(log), "--last", "3", "--to", "15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["13", "14", "15"]


def test_missing_log_is_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "summary", str(tmp_path / "nope.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sentinel: error: no event log at")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_record_names_position_and_can_be_skipped(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(log) as conn:
        conn.execute("UPDATE events SET body = x'00ff' WHERE position = 4")
    conn.close()
    assert main(["log", "show", str(log)]) == 2
    captured = capsys.readouterr()
    assert "position 4 (type 'user_message')" in captured.err
    assert "--skip-invalid" in captured.err
    assert main(["log", "show", str(log), "--skip-invalid"]) == 0
    positions = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "4" not in positions
    assert len(positions) == 14
