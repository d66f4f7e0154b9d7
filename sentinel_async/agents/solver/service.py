"""The Solver agent: batches complete groups from the log, trains off the event loop, publishes versions.

It follows `EpisodeStarted`, `EpisodeFinished` and its own `BatchFormed` and `GroupsDropped` events (consumer
"solver"). When enough complete groups survive screening, it trains one step in a worker thread, then commits
`BatchFormed` and `PolicyUpdated` to its stream together with its cursor (exactly once), and syncs the new
weights. The groups screening drops are recorded as a `GroupsDropped` event in the same transaction (or, when
no batch forms, alone with the cursor) and counted in the next `PolicyUpdated.metrics`. Its state is rebuilt
from the log on start: episodes a batch already listed are never trained on twice, and a dropped group is
never screened again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import msgspec

from sentinel_async.agents.solver.batching import (
    GROUP_EVENTS,
    BatchingConfig,
    GroupTracker,
    batch_event,
    drops_event,
    plan_batch,
)
from sentinel_async.agents.solver.trainer import GRPOTrainer, StepResult
from sentinel_async.agents.solver.weights import InProcessSync, WeightSync
from sentinel_async.bus import subscribe
from sentinel_async.errors import SentinelError
from sentinel_async.events import (
    BatchFormed,
    EpisodeFinished,
    GroupsDropped,
    NewEvent,
    PolicyUpdated,
)
from sentinel_async.store import CursorUpdate, EventFilter, EventStore, StreamAppend


class SolverConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The consumer name, the stream the solver writes, and how batches form."""

    consumer: str = "solver"
    stream: str = "solver"
    batching: BatchingConfig = BatchingConfig()


_FILTER = EventFilter.of(types=list(GROUP_EVENTS))


class Solver:
    """Trains `trainer` on the log's rollouts and pushes each new version through `sync`."""

    def __init__(
        self,
        store: EventStore,
        trainer: GRPOTrainer,
        *,
        config: SolverConfig | None = None,
        sync: WeightSync | None = None,
    ) -> None:
        self.store = store
        self.trainer = trainer
        self.config = config or SolverConfig()
        self.sync = sync
        self.tracker = GroupTracker(self.config.batching.group_size)
        self.step = 0
        self.dropped: Counter[str] = Counter()
        """Drops since the last `PolicyUpdated`, by kind and reason (folded into the next update's metrics)."""
        self.results: list[StepResult] = []
        self.position = 0
        """The last log position this solver has fully handled (trained on, or found no batch at)."""

    def catch_up(self) -> int:
        """Rebuild state from the log up to the cursor; check the trainer is at the last published version."""
        cursor = self.store.cursor(self.config.consumer)
        last_version = 0
        for record in self.store.read(filter=_FILTER, to=cursor):
            self.tracker.observe(record.payload)
        self.dropped.clear()
        for record in self.store.read(filter=EventFilter.of(streams=[self.config.stream])):
            if isinstance(record.payload, BatchFormed):
                self.step = max(self.step, record.payload.step)
                self.tracker.observe(record.payload)
            elif isinstance(record.payload, GroupsDropped):
                self.tracker.observe(record.payload)
                self._count_drops(record.payload)
            elif isinstance(record.payload, PolicyUpdated):
                last_version = record.payload.version
                self.dropped.clear()  # those drops are in this update's metrics
        if last_version != self.trainer.version and self.step > 0:
            raise SentinelError(
                f"the log's last policy version is {last_version} but the trainer is at {self.trainer.version}; "
                "load the trainer from that version's checkpoint"
            )
        return cursor

    async def run(self, *, max_steps: int | None = None, follow: bool = True) -> list[StepResult]:
        """Process events until `max_steps` steps were taken (or, with `follow=False`, the log's head)."""
        cursor = self.catch_up()
        taken = 0
        async with subscribe(
            self.store, start_after=cursor, filter=_FILTER, follow=follow, idle_timeout=0.05
        ) as events:
            async for record in events:
                self.tracker.observe(record.payload)
                if not isinstance(record.payload, EpisodeFinished):
                    self.position = record.position
                    continue
                result = await self.maybe_train(record.position)
                self.position = record.position
                if result is not None:
                    taken += 1
                    if max_steps is not None and taken >= max_steps:
                        break
        return self.results

    def _count_drops(self, drops: GroupsDropped) -> None:
        self.dropped.update(f"dropped_groups_{r}" for r in drops.groups.values())
        self.dropped.update(f"dropped_episodes_{r}" for r in drops.episodes.values())

    async def maybe_train(self, position: int) -> StepResult | None:
        """Form a batch if enough groups are complete; train, commit and sync it. Drops are committed either way."""
        step, version = self.step + 1, self.trainer.version
        plan = plan_batch(self.store, self.tracker, step=step, current_version=version, config=self.config.batching)
        drops = drops_event(plan, step=step, policy_version=version)
        if drops is not None:
            self._count_drops(drops)
        if plan.batch is None:
            if drops is not None:
                await self.store.commit(
                    [StreamAppend(stream_id=self.config.stream, events=[NewEvent(payload=drops)])],
                    cursor=CursorUpdate(self.config.consumer, position),
                )
            return None
        batch = plan.batch
        result = await self.trainer.astep(batch)
        metrics = {**result.metrics, **{k: float(v) for k, v in self.dropped.items()}}
        self.dropped.clear()
        update = PolicyUpdated(
            version=result.version, batch_id=batch.batch_id, checkpoint=result.checkpoint, metrics=metrics
        )
        events = [NewEvent(payload=batch_event(batch)), NewEvent(payload=update)]
        if drops is not None:
            events.insert(0, NewEvent(payload=drops))  # screened before the batch formed
        await self.store.commit(
            [StreamAppend(stream_id=self.config.stream, events=events)],
            cursor=CursorUpdate(self.config.consumer, position),
        )
        self.step = batch.step
        result = msgspec.structs.replace(result, metrics=metrics)
        self.results.append(result)
        if self.sync is not None:
            await self.push(result.version)
        return result

    async def push(self, version: int) -> None:
        """Sync `version` to the rollout engine."""
        assert self.sync is not None
        state: dict[str, Any] | None = None
        if isinstance(self.sync, InProcessSync):
            state = await anyio.to_thread.run_sync(self.trainer.export_state_dict)
        await self.sync.push(version, state_dict=state, adapter_path=self.trainer.adapter_path(version))
