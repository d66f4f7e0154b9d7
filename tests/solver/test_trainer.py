"""GRPOTrainer on real recorded episodes: a step changes the weights, is finite, versions and checkpoints;
tokens the policy did not sample get exactly zero gradient; training runs off the event loop; a resumed
trainer continues with the saved optimizer state exactly as an uninterrupted one."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
import torch

from sentinel_async.agents.solver import BatchingConfig, GRPOTrainer, TrainerConfig, plan_batch
from sentinel_async.agents.solver.batching import GroupTracker, TrainingBatch
from sentinel_async.agents.solver.grpo import GRPOConfig
from sentinel_async.agents.solver.trainer import OPTIMIZER_FILE, load_policy
from sentinel_async.store import MemoryEventStore

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def batch_of(store: MemoryEventStore) -> TrainingBatch:
    tracker = GroupTracker()
    for record in store.read():
        tracker.observe(record.payload)
    plan = plan_batch(store, tracker, step=1, current_version=0, config=BatchingConfig(groups_per_batch=2))
    assert plan.batch is not None
    return plan.batch


def test_a_step_changes_parameters_bumps_the_version_and_writes_a_checkpoint(
    store: MemoryEventStore, new_model: Callable[[], Any], ckpt: Path
) -> None:
    model = new_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainerConfig(lr=1e-3, max_tokens_per_microbatch=4000, objective=GRPOConfig(kl_coef=0.01))
    trainer = GRPOTrainer(model, config, ckpt)
    assert (ckpt / "v000000" / "meta.json").exists()
    result = trainer.step(batch_of(store))
    assert (result.version, trainer.version, result.batch_id) == (1, 1, "batch-000001")
    m = result.metrics
    for name in ("loss", "clip_fraction", "logprob_mismatch", "grad_norm", "tokens", "padding_fraction"):
        assert math.isfinite(m[name]), name
    assert m["tokens"] == sum(s.num_sampled for s in batch_of(store).samples)
    assert m["logprob_mismatch"] < 1e-3, "same weights as the rollout: trainer and sampler log-probs agree"
    assert m["padding_fraction"] < 0.1
    assert m["grad_norm"] > 0
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    meta = json.loads((Path(result.checkpoint) / "meta.json").read_text())
    assert (meta["version"], meta["batch_id"], meta["parent_version"]) == (1, "batch-000001", 0)
    assert (Path(result.checkpoint) / "model.safetensors").exists()


def test_tokens_the_policy_did_not_sample_get_zero_gradient(
    store: MemoryEventStore, new_model: Callable[[], Any], ckpt: Path
) -> None:
    model = new_model()
    grads: list[torch.Tensor] = []
    inputs: list[torch.Tensor] = []

    def keep(module: Any, args: Any, output: torch.Tensor) -> None:
        output.register_hook(grads.append)  # type: ignore[no-untyped-call]

    model.lm_head.register_forward_hook(keep)
    model.model.register_forward_hook(
        lambda module, args, kwargs, out: inputs.append(kwargs["input_ids"]), with_kwargs=True
    )
    trainer = GRPOTrainer(model, TrainerConfig(max_tokens_per_microbatch=1000), ckpt)
    batch = batch_of(store)
    trainer.evaluate(batch, backward=True)
    masks = {tuple(s.input_ids): s.loss_mask for s in batch.samples}
    checked = 0
    for grad, ids in zip(grads, inputs, strict=True):  # each micro-batch's backward runs before the next forward
        norms = grad.abs().sum(-1)
        for row in range(ids.shape[0]):
            seq = ids[row].tolist()
            key = next(k for k in masks if list(k) == seq[: len(k)])
            target_mask = torch.tensor(masks[key][1:] + [0] * (len(seq) - len(key) + 1), dtype=torch.bool)
            assert torch.equal(norms[row] > 0, target_mask), "gradient exactly where a sampled token is predicted"
            checked += len(seq)
    assert checked > 1000


def test_negative_weight_scales_what_failures_push_down_and_leaves_successes_alone() -> None:
    from sentinel_async.agents.solver.grpo import token_objective

    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]], requires_grad=True)
    rollout = logp.detach().clone()
    adv = torch.tensor([[1.5, 1.5, -0.5, -0.5]])
    mask = torch.ones_like(adv)
    grads = {}
    for weight in (1.0, 0.25, 0.0):
        loss, _ = token_objective(logp, rollout, adv, mask, GRPOConfig(negative_weight=weight))
        (grad,) = torch.autograd.grad(loss, logp)
        grads[weight] = grad
    assert torch.allclose(grads[1.0], torch.tensor([[-1.5, -1.5, 0.5, 0.5]]))
    assert torch.equal(grads[0.25][:, :2], grads[1.0][:, :2]), "successes pull as hard as before"
    assert torch.allclose(grads[0.25][:, 2:], 0.25 * grads[1.0][:, 2:])
    assert torch.equal(grads[0.0][:, 2:], torch.zeros(1, 2)), "failures no longer push their tokens down"
    with pytest.raises(ValueError, match="negative_weight"):
        GRPOConfig(negative_weight=1.5)


async def test_a_step_runs_off_the_event_loop(
    store: MemoryEventStore, new_model: Callable[[], Any], ckpt: Path
) -> None:
    trainer = GRPOTrainer(new_model(), TrainerConfig(), ckpt)
    batch = batch_of(store)
    ticks = 0
    done = anyio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await trainer.astep(batch)
        done.set()
    assert ticks >= 5, "the loop kept running while the model trained"


def same_weights(a: Any, b: Any) -> bool:
    theirs = b.state_dict()
    return all(torch.equal(v, theirs[k]) for k, v in a.state_dict().items())


def test_a_resumed_trainer_restores_the_optimizer_state_and_continues_exactly(
    store: MemoryEventStore, new_model: Callable[[], Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TrainerConfig(lr=1e-3, max_tokens_per_microbatch=4000, objective=GRPOConfig(kl_coef=0.01))
    first = batch_of(store)
    second = msgspec.structs.replace(first, step=2, batch_id="batch-000002", policy_version=1)
    straight = GRPOTrainer(new_model(), config, tmp_path / "straight")
    straight.step(first)
    straight.step(second)

    run = tmp_path / "run"
    killed = GRPOTrainer(new_model(), config, run)
    result = killed.step(first)
    saved = torch.load(Path(result.checkpoint) / OPTIMIZER_FILE, weights_only=True)
    live = killed.optimizer.state_dict()["state"]
    del killed  # the process dies; a resume rebuilds everything from the run folder

    resumed = GRPOTrainer(load_policy(run, 1), config, run, version=1, save_initial=False, resume=True)
    state = resumed.optimizer.state_dict()["state"]
    assert len(saved["state"]) == len(state) == len(live) > 0
    for index, entry in saved["state"].items():
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state[index][name], entry[name]), (index, name)
            assert torch.equal(entry[name], live[index][name]), (index, name)
    assert float(state[0]["step"]) == 1.0
    resumed.step(second)
    assert resumed.version == straight.version == 2
    assert same_weights(resumed.model, straight.model), "the resumed second step matches the uninterrupted one"

    # without the optimizer state (a checkpoint from before it was saved) the resume still works, but differs
    (run / "v000001" / OPTIMIZER_FILE).unlink()
    capsys.readouterr()
    cold = GRPOTrainer(load_policy(run, 1), config, run, version=1, save_initial=False, resume=True)
    assert cold.optimizer.state_dict()["state"] == {}
    said = capsys.readouterr()
    assert "no optimizer state to resume" in said.out + said.err
    cold.step(second)
    assert not same_weights(cold.model, straight.model)
