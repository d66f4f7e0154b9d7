"""sentinel_async.analysis: pass^k and pass@k over tasks with bootstrap intervals."""

from __future__ import annotations

import pytest

from sentinel_async.analysis import paired_difference_ci, pass_at_ci, pass_hat_ci

REWARDS = {"a": [1.0, 1.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0, 0.0], "c": [1.0, 1.0, 1.0, 1.0], "d": [1.0, 0.0, 0.0, 0.0]}


def test_pass_at_k_rises_with_k_and_pass_hat_falls_and_they_meet_at_one() -> None:
    assert pass_at_ci(REWARDS, 1).mean == pytest.approx(pass_hat_ci([REWARDS], 1).mean) == pytest.approx(7 / 16)
    assert pass_at_ci(REWARDS, 4).mean == pytest.approx(3 / 4)  # a task counts once any trial succeeds
    assert pass_hat_ci([REWARDS], 4).mean == pytest.approx(1 / 4)  # only "c" always succeeds
    at = [pass_at_ci(REWARDS, k).mean for k in (1, 2, 3, 4)]
    assert at == sorted(at)


def test_intervals_hold_the_mean_and_need_enough_trials() -> None:
    interval = pass_at_ci(REWARDS, 2)
    assert interval.low <= interval.mean <= interval.high
    with pytest.raises(ValueError, match="5 trials"):
        pass_at_ci(REWARDS, 5)


def test_a_paired_difference_of_a_run_with_itself_is_zero() -> None:
    difference = paired_difference_ci([REWARDS], [REWARDS], 1)
    assert (difference.mean, difference.low, difference.high) == (0.0, 0.0, 0.0)
