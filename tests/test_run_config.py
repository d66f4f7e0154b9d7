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
