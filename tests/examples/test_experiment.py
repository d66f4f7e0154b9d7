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


def test_the_headroom_samples_the_bootstrap_like_the_rollouts() -> None:
    args = experiment.parse_args(["--trials", "2", "--headroom-trials", "8", "--set", "evaluation.temperature=0.0"])
    headroom = load_run_config(overrides=experiment.run_config(args, experiment.HEADROOM, seed=0))
    assert headroom.rollout.rounds == 0
    assert headroom.evaluation.initial
    assert headroom.evaluation.trials == 8
    assert headroom.evaluation.temperature is None  # sampled at policy.temperature, as rollouts are
    baseline = load_run_config(overrides=experiment.run_config(args, experiment.BASELINE, seed=0))
    assert baseline.evaluation.temperature == 0.0


def test_the_headroom_section_names_the_tasks_samples_solve_and_the_ceiling() -> None:
    from sentinel_async.analysis import pass_at_ci

    sampled = {"12": [1.0, 0.0, 0.0, 0.0], "5": [0.0, 0.0, 1.0, 1.0], "7": [0.0] * 4, "30": [0.0] * 4}
    greedy = {"12": [0.0], "5": [1.0], "7": [0.0], "30": [1.0]}
    lines = experiment.headroom_section({k: pass_at_ci(sampled, k) for k in (1, 2, 4)}, greedy, sampled)
    text = "\n".join(lines)
    assert "| bootstrap, sampled | 0.188" in text  # pass@1: (1/4 + 2/4) / 4
    assert "solve 2 of 4 test tasks at least once (5, 12)" in text
    # greedy solves 5 and 30, samples 5 and 12: three tasks are within reach of reinforcement alone
    assert "from 0.500 to at most about 0.750" in text
    assert "+25.0 points" in text
