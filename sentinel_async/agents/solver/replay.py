"""Recomputing a recorded step's loss from the log and the checkpoint the step started from."""

from __future__ import annotations

from pathlib import Path

from sentinel_async.agents.solver.batching import rebuild_batch
from sentinel_async.errors import SentinelError
from sentinel_async.events import BatchFormed, PolicyUpdated
from sentinel_async.store import EventFilter, EventStore


class ReplayError(SentinelError):
    """Raised when a batch, its policy update or a checkpoint it needs is missing."""


def find_batch(store: EventStore, *, batch_id: str | None = None, step: int | None = None) -> BatchFormed:
    """The `BatchFormed` event with this id (or step)."""
    for record in store.read(filter=EventFilter.of(types=[BatchFormed])):
        payload = record.payload
        if isinstance(payload, BatchFormed) and (payload.batch_id == batch_id or payload.step == step):
            return payload
    raise ReplayError(f"no batch {batch_id or f'at step {step}'} in the log")


def find_update(store: EventStore, batch_id: str) -> PolicyUpdated:
    """The `PolicyUpdated` event of a batch."""
    for record in store.read(filter=EventFilter.of(types=[PolicyUpdated])):
        if isinstance(record.payload, PolicyUpdated) and record.payload.batch_id == batch_id:
            return record.payload
    raise ReplayError(f"batch {batch_id} has no policy update in the log")


def replay_batch(store: EventStore, batch_id: str, checkpoint_dir: str | Path) -> tuple[float, float]:
    """(recorded loss, loss recomputed from the log's token ids and the starting checkpoint)."""
    from sentinel_async.agents.solver.trainer import GRPOTrainer, checkpoint_path, load_policy, read_meta

    event = find_batch(store, batch_id=batch_id)
    update = find_update(store, batch_id)
    start = checkpoint_path(checkpoint_dir, event.policy_version)
    end = checkpoint_path(checkpoint_dir, update.version)
    for path in (start, end):
        if not Path(path, "meta.json").exists():
            raise ReplayError(f"checkpoint {path} is missing (its meta.json is not there)")
    config = read_meta(end).config
    batch = rebuild_batch(store, event)
    model = load_policy(checkpoint_dir, event.policy_version)
    reference = None
    if config.lora is None and config.objective.kl_coef > 0:
        reference = load_policy(checkpoint_dir, 0).eval().requires_grad_(False)
    trainer = GRPOTrainer(
        model, config, checkpoint_dir, version=event.policy_version, reference=reference, save_initial=False
    )
    trainer.model.train()
    recomputed = trainer.evaluate(batch)["loss"]
    return update.metrics["loss"], recomputed
