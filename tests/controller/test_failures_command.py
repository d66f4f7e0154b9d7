"""`sentinel log failures`: every failed episode of a log with its first deviation, from a real SQLite log."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from sentinel_async.cli import main
from sentinel_async.events import FailureDiagnosed, NewEvent
from sentinel_async.store import SQLiteEventStore
from sentinel_async.store.base import StreamAppend
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from tests.controller.retail_episodes import PLAN, produce


def _log(tmp_path: Path, domain: RetailDomain, tasks: dict[str, TaskSpec]) -> dict[str, str]:
    """Plays `PLAN` into a SQLite log in `tmp_path`; episode id -> expected category of each failure."""

    async def play() -> dict[str, str]:
        with SQLiteEventStore(tmp_path / "events.sqlite") as store:
            return await produce(store, domain, tasks, PLAN)

    return anyio.run(play)


def test_lists_each_failed_episode_with_its_category_and_evidence(
    tmp_path: Path, domain: RetailDomain, tasks: dict[str, TaskSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _log(tmp_path, domain, tasks)
    assert main(["log", "failures", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("task ")]
    assert {line.split()[2]: line.split()[3] for line in headers} == expected  # no successful episode listed
    assert f"{len(expected)} failed episodes: " in out.splitlines()[-1]
    wrong_item = next(i for i, line in enumerate(out.splitlines()) if "WrongItemExpert-0" in line)
    evidence = out.splitlines()[wrong_item + 2 : wrong_item + 4]
    assert evidence[0].startswith("  expected: exchange_delivered_order_items(")
    assert evidence[1].startswith("  actual:   exchange_delivered_order_items(")
    assert evidence[0] != evidence[1].replace("actual:  ", "expected:")
    malformed = next(i for i, line in enumerate(out.splitlines()) if "MalformedCallExpert" in line)
    assert out.splitlines()[malformed + 3].startswith("  actual:   unknown_tool: exchange_order_items(")


def test_filters_by_task_and_prints_json_lines(
    tmp_path: Path, domain: RetailDomain, tasks: dict[str, TaskSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _log(tmp_path, domain, tasks)
    assert main(["log", "failures", str(tmp_path / "events.sqlite"), "--task", "0", "--task", "1", "--json"]) == 0
    found = [msgspec.json.decode(line, type=FailureDiagnosed) for line in capsys.readouterr().out.splitlines()]
    assert {d.episode_id: d.category for d in found} == {
        episode: category for episode, category in expected.items() if episode.endswith(("-0", "-1"))
    }
    assert all(d.evidence and d.evidence[0].episode_id == d.episode_id for d in found)


def test_a_recorded_diagnosis_is_shown_as_recorded(
    tmp_path: Path, domain: RetailDomain, tasks: dict[str, TaskSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run's log holds the Controller's diagnoses (perhaps an LLM analyser's): those are what the run acted on."""
    expected = _log(tmp_path, domain, tasks)
    episode = next(e for e, category in expected.items() if category == "missing_write")
    recorded = FailureDiagnosed(
        episode_id=episode, task_id="1", category="misread_intent", summary="read by a model", analyser="llm"
    )
    with SQLiteEventStore(tmp_path / "events.sqlite") as store:
        store.commit_sync([StreamAppend(stream_id="controller", events=[NewEvent(payload=recorded)])])
    assert main(["log", "failures", str(tmp_path), "--episode", episode, "--json"]) == 0
    assert msgspec.json.decode(capsys.readouterr().out, type=FailureDiagnosed) == recorded
