"""The Solver end to end: batches from the log, trains off-thread, commits BatchFormed + PolicyUpdated with its
cursor, syncs weights in-process or to a (fake) vLLM server as `policy-v1`; replay-batch matches the record."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sentinel_async.agents.clients import (
    ClientConfig,
    SamplingParams,
    TokenPolicy,
    TransformersGenerator,
    VLLMCompletionsGenerator,
)
from sentinel_async.agents.solver import (
    BatchingConfig,
    GRPOTrainer,
    InProcessSync,
    LoraSpec,
    Solver,
    SolverConfig,
    TrainerConfig,
    VLLMLoRASync,
    replay_batch,
)
from sentinel_async.cli.replay_batch import cmd_replay_batch
from sentinel_async.events import BatchFormed, EpisodeStarted, PolicyUpdated
from sentinel_async.store import EventStore, SQLiteEventStore
from sentinel_async.testing import FakeCompletion, FakeVLLM

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

CONFIG = SolverConfig(batching=BatchingConfig(groups_per_batch=2, group_size=4))


def replay_args(run: Path, **kw: Any) -> argparse.Namespace:
    values: dict[str, Any] = {"batch_id": None, "step": None, "checkpoints": None, "tolerance": 1e-4, **kw}
    return argparse.Namespace(run_dir=str(run), **values)


async def test_solver_trains_commits_syncs_in_process_and_replays(
    fill: Callable[[EventStore], None],
    new_model: Callable[[], Any],
    new_policy: Callable[[], TokenPolicy],
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    policy = new_policy()
    generator = policy.generator
    assert isinstance(generator, TransformersGenerator)
    prompt = [5, 6, 7, 8]
    params = SamplingParams(max_tokens=4, seed=9)
    before = await generator.generate(prompt, params)
    with SQLiteEventStore(run / "events.sqlite") as store:
        fill(store)
        trainer = GRPOTrainer(new_model(), TrainerConfig(lr=1e-2), run / "checkpoints")
        solver = Solver(store, trainer, config=CONFIG, sync=InProcessSync(policy))
        (result,) = await solver.run(max_steps=1, follow=False)
        assert result.version == 1
        assert store.cursor("solver") > 0
        formed, updated = [r.payload for r in store.read_stream("solver")]
        assert isinstance(formed, BatchFormed)
        assert isinstance(updated, PolicyUpdated)
        episodes = [r.payload.episode_id for r in store.read() if isinstance(r.payload, EpisodeStarted)]
        assert sorted(formed.episode_ids) == sorted(episodes)
        assert (formed.policy_version, updated.version, updated.batch_id) == (0, 1, formed.batch_id)
        assert {"loss", "clip_fraction", "logprob_mismatch", "grad_norm", "tokens"} <= set(updated.metrics)
        assert updated.checkpoint == str(run / "checkpoints" / "v000001")
        recorded_loss, recomputed = replay_batch(store, formed.batch_id, run / "checkpoints")
        assert recomputed == pytest.approx(recorded_loss, abs=1e-6)
    # the in-process generator now serves version 1 with the trainer's weights
    assert policy.policy_version == generator.weights_version == 1
    served = generator.model.state_dict()
    assert all(torch.equal(v, served[k]) for k, v in trainer.model.state_dict().items())
    after = await generator.generate(prompt, params)
    assert (after.weights_version, before.weights_version) == (1, 0)
    assert after.logprobs != before.logprobs

    assert cmd_replay_batch(replay_args(run, step=1)) == 0
    # replaying from the wrong starting weights is caught
    shutil.copy(run / "checkpoints" / "v000001" / "model.safetensors", run / "checkpoints" / "v000000")
    assert cmd_replay_batch(replay_args(run, batch_id="batch-000001")) == 1


async def test_lora_weights_reach_a_vllm_server_as_policy_v1(
    fill: Callable[[EventStore], None], new_model: Callable[[], Any], tmp_path: Path
) -> None:
    with SQLiteEventStore(tmp_path / "events.sqlite") as store:
        fill(store)
        config = TrainerConfig(lr=1e-2, lora=LoraSpec(r=4, alpha=8))
        trainer = GRPOTrainer(new_model(), config, tmp_path / "checkpoints")
        reply = FakeCompletion(token_ids=[9, 10], logprobs=[-0.1, -0.2])
        async with FakeVLLM(completion=lambda prompt, body: reply) as server:
            cfg = ClientConfig(base_url=server.base_url, model=server.model, timeout_s=5.0, max_retries=0)
            async with VLLMCompletionsGenerator(cfg) as generator:
                solver = Solver(store, trainer, config=CONFIG, sync=VLLMLoRASync(generator))
                (result,) = await solver.run(max_steps=1, follow=False)
                out = await generator.generate([1, 2], SamplingParams(max_tokens=2))
        assert server.lora_adapters == {"policy-v1": result.checkpoint}
        assert (Path(result.checkpoint) / "adapter_config.json").exists()
        assert server.bodies("/v1/completions")[-1]["model"] == "policy-v1"
        assert out.weights_version == 1
        recorded_loss, recomputed = replay_batch(store, result.batch_id, tmp_path / "checkpoints")
        assert recomputed == pytest.approx(recorded_loss, abs=1e-6)
