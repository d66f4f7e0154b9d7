"""The run configuration: files plus dotted overrides, and the one temperature the GRPO ratio depends on."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_async.errors import SentinelError
from sentinel_async.run_config import load_run_config


def test_toml_file_and_overrides_combine(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('run_id = "demo"\n[rollout]\nrounds = 3\n[proposer]\nmode = "general"\n')
    config = load_run_config(path, {"rollout.rounds": 5, "evaluation.trials": 2})
    assert (config.run_id, config.rollout.rounds, config.proposer.mode) == ("demo", 5, "general")
    assert config.evaluation.trials == 2


def test_the_objective_follows_the_rollout_temperature() -> None:
    config = load_run_config(None, {"policy.temperature": 0.7})
    assert config.trainer.objective.temperature == 0.7


def test_a_contradictory_objective_temperature_is_refused() -> None:
    with pytest.raises(SentinelError, match=r"set only policy\.temperature"):
        load_run_config(None, {"policy.temperature": 0.7, "trainer.objective.temperature": 1.0})
    agreed = load_run_config(None, {"policy.temperature": 0.7, "trainer.objective.temperature": 0.7})
    assert agreed.trainer.objective.temperature == 0.7


def test_bad_files_and_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SentinelError, match="no configuration file"):
        load_run_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("rollout = [")
    with pytest.raises(SentinelError, match="cannot read the configuration"):
        load_run_config(broken)
    with pytest.raises(SentinelError, match="invalid run configuration"):
        load_run_config(None, {"rollout.rounds": "many"})


def test_a_partial_section_keeps_the_runs_defaults_for_the_rest(tmp_path: Path) -> None:
    """The run's defaults differ from the sections' own (eight episodes per group, the progress term, lr 1e-4):
    naming one setting of a section must not reset the others to the section's defaults."""
    default = load_run_config()
    config = load_run_config(
        None, {"rollout.rounds": 8, "batching.groups_per_batch": 2, "trainer.objective.kl_coef": 0.1}
    )
    assert (config.rollout.rounds, config.rollout.group_size) == (8, default.rollout.group_size) == (8, 8)
    assert config.batching.groups_per_batch == 2
    assert (config.batching.progress_weight, config.batching.max_staleness) == (0.5, 2)
    assert (config.trainer.objective.kl_coef, config.trainer.lr) == (0.1, default.trainer.lr)
    path = tmp_path / "run.toml"
    path.write_text("[rollout]\nrounds = 2\n[batching]\nmax_staleness = 3\n")
    from_file = load_run_config(path)
    assert (from_file.rollout.group_size, from_file.batching.progress_weight) == (8, 0.5)


def test_an_unknown_setting_is_refused_with_the_settings_it_could_mean() -> None:
    with pytest.raises(SentinelError, match=r"unknown run setting 'rollout\.group'; rollout has: .*group_size"):
        load_run_config(None, {"rollout.group": 4})
    with pytest.raises(SentinelError, match=r"unknown run setting 'rolout'; the top level has: .*rollout"):
        load_run_config(None, {"rolout.rounds": 4})
