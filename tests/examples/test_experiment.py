"""examples/experiment.py: every arm gets the same rollout budget and evaluation; only the task source differs."""

from __future__ import annotations

from examples import experiment
from sentinel_async.run_config import load_run_config


def test_arms_share_the_budget_and_evaluation_and_differ_only_in_their_tasks() -> None:
    args = experiment.parse_args(["--rounds", "3", "--group-size", "8", "--trials", "4", "--set", "trainer.lr=2e-5"])
    configs = {arm: load_run_config(overrides=experiment.run_config(args, arm, seed=1)) for arm in experiment.ARMS}
    budgets = {(c.rollout.rounds, c.rollout.tasks_per_round, c.rollout.group_size) for c in configs.values()}
    assert budgets == {(3, 4, 8)}
    assert {c.evaluation.trials for c in configs.values()} == {4}
    assert {c.trainer.lr for c in configs.values()} == {2e-5}
    assert {c.seed for c in configs.values()} == {1}
    assert configs["sentinel"].proposer.mode == "targeted"
    assert configs["general"].proposer.mode == "general"
    assert configs["train-only"].proposer.mode == "off"
    assert configs["train-only"].pool.proposed_ratio == 0.0
    assert configs["sentinel"].pool.proposed_ratio == configs["general"].pool.proposed_ratio > 0


def test_the_baseline_only_evaluates_the_bootstrap() -> None:
    args = experiment.parse_args(["--trials", "2"])
    baseline = load_run_config(overrides=experiment.run_config(args, experiment.BASELINE, seed=0))
    assert baseline.rollout.rounds == 0
    assert baseline.evaluation.initial
    assert baseline.evaluation.trials == 2
