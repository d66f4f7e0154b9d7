"""pass^k and pass@k: tau2's definitions and worked examples."""

from __future__ import annotations

import math

import pytest

from sentinel_async.metrics import format_pass_k_table, is_success, pass_at_k, pass_hat_k, pass_k_report


def test_tau2_example() -> None:
    # 4 trials, 3 successes -> pass^1 0.75, pass^2 0.5, pass^4 0.0 (tau2 note).
    assert pass_hat_k(4, 3, 1) == 0.75
    assert pass_hat_k(4, 3, 2) == 0.5
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_at_k(4, 3, 1) == 0.75
    assert pass_at_k(4, 3, 2) == 1.0
    assert pass_at_k(4, 0, 3) == 0.0
    with pytest.raises(ValueError, match="less than k"):
        pass_hat_k(2, 1, 3)
    with pytest.raises(ValueError, match="less than k"):
        pass_at_k(2, 1, 3)


def test_success_tolerance() -> None:
    assert is_success(1.0)
    assert is_success(1 - 5e-7)
    assert is_success(1 + 5e-7)
    assert not is_success(1 - 2e-6)
    assert not is_success(0.0)


def test_report_averages_over_tasks() -> None:
    rewards = {"a": [1.0, 1.0, 0.0, 1.0], "b": [0.0, 0.0, 0.0, 0.0], "c": [1.0, 1.0, 1.0, 1.0 - 1e-9]}
    report = pass_k_report(rewards)
    assert (report.num_tasks, report.num_trials, report.max_k) == (3, 12, 4)
    assert report.pass_hat[1] == pytest.approx((0.75 + 0 + 1) / 3)
    assert report.pass_hat[2] == pytest.approx((0.5 + 0 + 1) / 3)
    assert report.pass_hat[4] == pytest.approx(1 / 3)
    assert report.pass_at[2] == pytest.approx((1 + 0 + 1) / 3)
    assert report.avg_reward == pytest.approx(math.fsum(x for r in rewards.values() for x in r) / 12)
    table = format_pass_k_table(report, title="retail")
    assert table.splitlines()[0] == "retail"
    assert "  1    0.5833    0.5833" in table
    assert len(table.splitlines()) == 3 + 4


def test_report_k_limited_by_fewest_trials() -> None:
    report = pass_k_report({"a": [1.0, 1.0, 1.0], "b": [1.0, 0.0]})
    assert report.max_k == 2
    assert report.pass_hat[2] == pytest.approx((1.0 + 0.0) / 2)  # each task uses all its own trials
    assert pass_k_report({"a": [1.0, 1.0, 1.0]}, max_k=1).max_k == 1
    with pytest.raises(ValueError, match="at least one"):
        pass_k_report({})
    with pytest.raises(ValueError, match="at least one"):
        pass_k_report({"a": []})
