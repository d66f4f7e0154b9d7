"""`sentinel run` on its real default path at toy size: bootstrap build, scripted user, Controller, Proposer, Solver.

A reduced end-to-end run (CI): the bootstrap policy is built from scratch (tokenizer, demonstrations, SFT) into
a temporary cache, then the loop runs two rounds with every agent on. It checks mechanics, not learning: a toy
policy earns no reward, so its groups have zero variance; `batching.min_reward_std=-1` keeps them anyway, which
makes the Solver take real (zero-advantage) steps so the update, weight sync and re-evaluation paths run too.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from sentinel_async.events import (
    BatchFormed,
    EpisodeFinished,
    EvaluationFinished,
    FailureDiagnosed,
    FailurePatternsUpdated,
    PolicyUpdated,
    RunStarted,
    TasksSampled,
)
from sentinel_async.store import SQLiteEventStore

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None or importlib.util.find_spec("tau2") is None,
        reason="needs the train and tau2 extras",
    ),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.slow,
]


def test_the_default_loop_runs_end_to_end_on_a_freshly_built_toy_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentinel_async.cli import main

    monkeypatch.setenv("SENTINEL_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    args = ["run", "--run-dir", str(run), "--no-progress", "--rounds", "2"]
    settings = {
        "policy.size": "toy",
        "policy.max_new_tokens": 24,
        "rollout.tasks_per_round": 2,
        "rollout.group_size": 2,
        "rollout.max_steps": 6,
        "batching.groups_per_batch": 1,
        "batching.min_reward_std": -1,
        "evaluation.max_tasks": 2,
        "evaluation.max_steps": 6,
        "pattern_every": 2,
    }
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0

    cached = list((tmp_path / "cache" / "bootstrap").glob("*/manifest.json"))
    assert len(cached) == 1, "the bootstrap was built on first use, into the cache"
    with SQLiteEventStore(run / "events.sqlite", read_only=True) as store:
        events = [r.payload for r in store.read()]
    kinds = Counter(type(e).__name__ for e in events)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.config["policy"]["kind"] == "bootstrap", "the default policy is the bootstrap"
    assert started.config["proposer"]["mode"] == "targeted"
    assert [e.round for e in events if isinstance(e, TasksSampled)] == [0, 1]
    training = [e for e in events if isinstance(e, EpisodeFinished) and e.purpose == "train"]
    assert len(training) == 2 * 2 * 2
    failed = {e.episode_id for e in training if e.reward < 1}
    diagnosed = [e for e in events if isinstance(e, FailureDiagnosed)]
    assert {d.episode_id for d in diagnosed} == failed, "every failed training episode was diagnosed once"
    assert len(diagnosed) == len(failed)
    assert kinds[FailurePatternsUpdated.__name__] >= 1
    batches = [e for e in events if isinstance(e, BatchFormed)]
    updates = [e for e in events if isinstance(e, PolicyUpdated)]
    assert batches
    assert len(updates) == len(batches)
    assert [u.version for u in updates] == list(range(1, len(updates) + 1))
    for update in updates:
        assert Path(update.checkpoint, "model.safetensors").exists()
        assert update.metrics["tokens"] > 0
    evaluated = [e.policy_version for e in events if isinstance(e, EvaluationFinished)]
    assert evaluated[0] == 0, "the bootstrap is evaluated before training"
    assert evaluated[-1] == updates[-1].version, "and so is the final version"
    assert (run / "report" / "report.md").exists()
    assert (run / "report" / "pass1.png").stat().st_size > 1000

    from sentinel_async.policies import load_policy
    from sentinel_async.run_config import PolicyConfig
    from sentinel_async.tools.retail.views import retail_lines

    loaded = load_policy(PolicyConfig(size="toy"), seed=0)
    assert loaded.policy.view.tool_view is retail_lines, "the run's policy is shown what its bootstrap was trained on"
    assert loaded.policy.view.window is not None
