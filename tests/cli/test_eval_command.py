"""`sentinel eval` end to end on retail, and the tau2 export of what it logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentinel_async.agents.recording import rebuild_episode
from sentinel_async.cli import main
from sentinel_async.events import EpisodeFinished, EvaluationFinished, RunStarted, TaskRegistered
from sentinel_async.store import EventFilter, SQLiteEventStore
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import score_with_tau2


def test_eval_prints_pass_k_and_logs_every_episode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = [
        "eval",
        "--run-dir",
        str(run),
        "--split",
        "base",
        "--task",
        "5",
        "--task",
        "7",
        "--trials",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tasks=2 trials=4 avg_reward=1.0000" in out
    assert "  2    1.0000    1.0000" in out  # pass^2 row
    assert "terminations: user_stop=4" in out
    result = json.loads((run / "eval-result.json").read_text())
    assert result["rewards"] == {"5": [1.0, 1.0], "7": [1.0, 1.0]}
    with SQLiteEventStore(run / "events.sqlite", read_only=True) as store:
        types = store.summary().by_type
        assert types["episode_started"] == types["episode_finished"] == 4
        assert types["task_registered"] == 2
        (started,) = [e.payload for e in store.read(filter=EventFilter.of(types=[RunStarted]))]
        assert isinstance(started, RunStarted)
        assert started.config["trials"] == 2
        (summary,) = [e.payload for e in store.read(filter=EventFilter.of(types=[EvaluationFinished]))]
        assert isinstance(summary, EvaluationFinished)
        assert summary.pass_hat_k == {1: 1.0, 2: 1.0}
        assert len(summary.episode_ids) == 4
        registered = [e.payload for e in store.read(filter=EventFilter.of(types=[TaskRegistered]))]
        assert {p.task_id for p in registered if isinstance(p, TaskRegistered)} == {"5", "7"}


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_eval_of_the_bootstrap_policy_builds_it_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The build runs its own event loop; `sentinel eval` starts it from inside one, so it must not collide."""
    pytest.importorskip("torch")
    monkeypatch.setenv("SENTINEL_CACHE", str(tmp_path / "cache"))
    argv = ["eval", "--policy", "bootstrap", "--size", "toy", "--task", "5", "--max-steps", "4", "--no-progress"]
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 0
    assert "tasks=1 trials=1" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "bootstrap").glob("*/manifest.json"))) == 1


def test_logged_episodes_export_to_tau2_files_that_tau2_scores_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert (
        main(["eval", "--run-dir", str(run), "--split", "base", "--task", "20", "--task", "36", "--no-progress"]) == 0
    )
    assert main(["log", "tau2", str(run), "-o", str(tmp_path / "tau2")]) == 0
    from sentinel_async.tools.tau2_compat import tau2_evaluation

    simulation_run = tau2_evaluation().simulation_run
    domain = RetailDomain()
    files = sorted((tmp_path / "tau2").glob("*.json"))
    assert len(files) == 2
    with SQLiteEventStore(run / "events.sqlite", read_only=True) as store:
        finished = {
            e.payload.episode_id: e.payload.reward
            for e in store.read(filter=EventFilter.of(types=[EpisodeFinished]))
            if isinstance(e.payload, EpisodeFinished)
        }
    for path in files:
        sim = simulation_run.model_validate_json(path.read_text())
        assert sim.termination_reason == "user_stop"
        assert sim.reward_info.reward == finished[path.stem] == 1.0
        with SQLiteEventStore(run / "events.sqlite", read_only=True) as store:
            messages = rebuild_episode(store, path.stem).messages
        task = domain.task(sim.task_id)
        assert score_with_tau2(task, messages, "user_stop").reward == 1.0


def test_bad_eval_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--run-dir", str(tmp_path), "--policy", "endpoint"]) == 2
    assert "--policy endpoint needs --model-url and --model" in capsys.readouterr().err
    assert main(["eval", "--run-dir", str(tmp_path), "--domain", "library", "--no-progress"]) == 2
    assert "play retail tasks" in capsys.readouterr().err
    assert main(["eval", "--run-dir", str(tmp_path), "--task", "999", "--no-progress"]) == 2
    assert "no tasks ['999'] in the test split" in capsys.readouterr().err
