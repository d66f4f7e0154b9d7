"""`sentinel run` end to end with a tiny random policy: the loop's mechanics, and resuming after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sentinel_async.errors import StoreOpenError
from sentinel_async.events import EpisodeFinished, EpisodeStarted, EvaluationFinished, FailureDiagnosed, TasksSampled
from sentinel_async.store import EventFilter, SQLiteEventStore

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SMALL = [
    "--policy", "tiny-random", "--no-progress",
    "--set", "rollout.tasks_per_round=2", "--set", "rollout.group_size=2", "--set", "rollout.max_steps=6",
    "--set", "rollout.concurrency=2", "--set", "evaluation.max_tasks=2", "--set", "evaluation.max_steps=6",
    "--set", "policy.max_new_tokens=12",
    "--set", "proposer.mode=off",
]  # fmt: skip


def sentinel(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sentinel_async", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def counts(path: Path) -> tuple[Counter[str], Counter[str], list[int]]:
    with SQLiteEventStore(path, read_only=True) as store:
        started = Counter(
            r.payload.episode_id for r in store.read(filter=EventFilter.of(types=[EpisodeStarted]))
            if isinstance(r.payload, EpisodeStarted)
        )  # fmt: skip
        finished = Counter(
            r.payload.episode_id for r in store.read(filter=EventFilter.of(types=[EpisodeFinished]))
            if isinstance(r.payload, EpisodeFinished)
        )  # fmt: skip
        rounds = [
            r.payload.round for r in store.read(filter=EventFilter.of(types=[TasksSampled]))
            if isinstance(r.payload, TasksSampled)
        ]  # fmt: skip
    return started, finished, rounds


def test_a_killed_run_resumes_without_lost_or_repeated_work(tmp_path: Path) -> None:
    run = tmp_path / "run"
    log = run / "events.sqlite"
    with sentinel("run", "--run-dir", str(run), "--rounds", "4", *SMALL) as first:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it once some training episodes are in the log
            time.sleep(0.5)
            try:
                if len(counts(log)[1]) >= 5:
                    break
            except StoreOpenError:  # the run has not created its log (or its schema) yet
                continue
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    started, finished, _ = counts(log)
    assert set(started.values()) == {1}

    with sentinel("run", "--run-dir", str(run), "--resume", "--no-progress") as second:
        out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "episodes in the log:" in out
    started, finished, rounds = counts(log)
    assert rounds == [0, 1, 2, 3]
    assert set(started.values()) == {1}, "no episode was played twice"
    assert set(finished.values()) == {1}
    training = [e for e in finished if "-eval-" not in e]
    assert len(training) == 4 * 2 * 2, "every round's groups are complete"
    with SQLiteEventStore(log, read_only=True) as store:
        diagnosed = Counter(
            r.payload.episode_id for r in store.read(filter=EventFilter.of(types=[FailureDiagnosed]))
            if isinstance(r.payload, FailureDiagnosed)
        )  # fmt: skip
        assert set(diagnosed.values()) == {1}, "each failure diagnosed once across the restart"
        assert set(diagnosed) == set(training), "every failed training episode, and no evaluation episode"
        evals = [r.payload for r in store.read(filter=EventFilter.of(types=[EvaluationFinished]))]
        assert [e.policy_version for e in evals if isinstance(e, EvaluationFinished)] == [0]


def test_a_run_folder_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    from sentinel_async.cli import main

    run = tmp_path / "run"
    assert main(["run", "--run-dir", str(run), "--rounds", "1", *SMALL]) == 0
    report = (run / "report" / "report.md").read_text()
    assert "## Held-out pass^1" in report
    assert (run / "report" / "pass1.png").stat().st_size > 1000
    assert main(["run", "--run-dir", str(run), "--rounds", "1", *SMALL]) == 2
