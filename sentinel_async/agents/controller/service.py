"""The Controller service: diagnoses every failed episode exactly once, as soon as it lands in the log.

    controller = Controller(RetailDomain())
    await controller.run(store, stop=stop_event)

It subscribes (consumer "controller") to `EpisodeFinished`. A failure (reward < 1) is rebuilt from its stream,
its task looked up (`TaskRegistered` in the log, else the domain's own tasks), diagnosed, and its
`FailureDiagnosed` committed to the stream "controller" in ONE transaction with the cursor: a restart never
diagnoses an episode twice nor skips one. Every `pattern_every` diagnoses the same transaction also carries
`FailurePatternsUpdated`. Successes only move the cursor, batched: when `ack_every` are pending or the
subscription has nothing more buffered. The pattern history is rebuilt from the stream at start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec

from sentinel_async.agents.controller.analyser import DeterministicAnalyser, Diagnosis, FailureAnalyser
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.patterns import PatternTracker
from sentinel_async.agents.recording import rebuild_episode
from sentinel_async.bus import subscribe
from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    Event,
    FailurePatternsUpdated,
    FaultRecorded,
    NewEvent,
    RecordedEvent,
    TaskRegistered,
    ToolResult,
    UserMessage,
)
from sentinel_async.store import CursorUpdate, EventFilter, EventStore, StreamAppend
from sentinel_async.tools.base import Domain, TaskSpec

SUCCESS_EPSILON = 1e-6
"""tau2's success test: reward within this of 1.0."""


class ControllerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the Controller reads and writes, and how often it reports patterns."""

    consumer: str = "controller"
    stream: str = "controller"
    pattern_every: int = 10
    resolve_after: int = 2
    max_episode_ids: int = 20
    ack_every: int = 64


class ControllerStats(msgspec.Struct, kw_only=True):
    """Counters of one `run` (not persisted)."""

    seen: int = 0
    diagnosed: int = 0
    successes: int = 0
    fallbacks: int = 0
    analysis_s: float = 0.0


class Controller:
    """Subscribes to finished episodes and diagnoses each failure; see the module docstring.

    `on_analysis_start(record)` is called right before a failure is analysed (for latency measurements).
    """

    def __init__(
        self,
        domain: Domain,
        *,
        analyser: FailureAnalyser | None = None,
        config: ControllerConfig | None = None,
        system_prompt: str = "",
        on_analysis_start: Callable[[RecordedEvent], None] | None = None,
    ) -> None:
        self.domain = domain
        self.analyser: FailureAnalyser = analyser or DeterministicAnalyser()
        self.config = config or ControllerConfig()
        self.system_prompt = system_prompt
        self.on_analysis_start = on_analysis_start
        self.tracker = PatternTracker(
            resolve_after=self.config.resolve_after, max_episode_ids=self.config.max_episode_ids
        )
        self.stats = ControllerStats()
        self._episodes_seen = 0
        self._tasks: dict[tuple[str, str], TaskSpec | None] = {}

    async def run(self, store: EventStore, *, stop: anyio.Event | None = None, follow: bool = True) -> None:
        """Diagnose failures until `stop` is set (or, with `follow=False`, until caught up with the head).

        The event in hand is always finished (shielded) before stopping; its commit is atomic with the cursor.
        An error (a failed commit) ends the run with that error; the next run redoes the uncommitted event.
        """
        try:
            await self._run(store, stop, follow)
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from None
            raise

    async def _run(self, store: EventStore, stop: anyio.Event | None, follow: bool) -> None:
        self._resume(store)
        cfg = self.config
        wanted = EventFilter.of(types=[EpisodeFinished])
        pending_ack: int | None = None
        pending_count = 0
        async with (
            subscribe(store, consumer=cfg.consumer, filter=wanted, follow=follow) as events,
            anyio.create_task_group() as group,
        ):
            if stop is not None:
                group.start_soon(_cancel_when_set, stop, group.cancel_scope)
            try:
                async for record in events:
                    with anyio.CancelScope(shield=True):
                        if await self._handle(store, record):
                            pending_ack, pending_count = None, 0
                        else:
                            pending_ack, pending_count = record.position, pending_count + 1
                        if pending_ack is not None and (pending_count >= cfg.ack_every or _drained(events)):
                            await store.ack(cfg.consumer, pending_ack)
                            pending_ack, pending_count = None, 0
            finally:
                if pending_ack is not None:
                    with anyio.CancelScope(shield=True):
                        await store.ack(cfg.consumer, pending_ack)
                group.cancel_scope.cancel()

    async def _handle(self, store: EventStore, record: RecordedEvent) -> bool:
        """Handle one `EpisodeFinished`; True when it committed (and so moved the cursor)."""
        finished = record.payload
        assert isinstance(finished, EpisodeFinished)
        if finished.purpose != "train":  # held-out evaluations (no leak into task generation) and expert guides
            return False
        self._episodes_seen += 1
        self.stats.seen += 1
        if finished.reward >= 1.0 - SUCCESS_EPSILON:
            self.stats.successes += 1
            return False
        if self.on_analysis_start is not None:
            self.on_analysis_start(record)
        started = time.perf_counter()
        diagnosis = await self.diagnose(store, finished)
        self.stats.analysis_s += time.perf_counter() - started
        event = diagnosis.to_event(finished.task_id, finished.episode_id)
        outputs: list[Event] = [event]
        if diagnosis.fallback_reason is not None:
            self.stats.fallbacks += 1
            outputs.append(
                FaultRecorded(
                    component="controller.llm_analyser",
                    message=diagnosis.fallback_reason,
                    episode_id=finished.episode_id,
                )
            )
        self.tracker.observe(event)
        if self.tracker.pending >= self.config.pattern_every:
            patterns = self.tracker.close_round()
            outputs.append(FailurePatternsUpdated(patterns=patterns, episodes_seen=self._episodes_seen))
        new = [NewEvent(payload=e, causation_id=record.event_id) for e in outputs]
        await store.commit(
            [StreamAppend(stream_id=self.config.stream, events=new)],
            cursor=CursorUpdate(self.config.consumer, record.position),
        )
        self.stats.diagnosed += 1
        return True

    async def diagnose(self, store: EventStore, finished: EpisodeFinished) -> Diagnosis:
        """Diagnose one recorded episode (any purpose) without recording anything: for offline analysis."""
        try:
            episode = rebuild_episode(store, finished.episode_id, system_prompt=self.system_prompt)
        except KeyError:
            return _unknown(finished, "the episode's events are not in the log")
        task = self._task(store, episode.started.domain, finished.task_id)
        if task is None:
            return _unknown(finished, f"task {finished.task_id!r} is neither registered in the log nor in the domain")
        turns = [_turn(e.payload) for e in episode.events]
        message_turns = [t for t in turns if t is not None]
        if self.system_prompt:
            message_turns.insert(0, 0)
        try:
            return await self.analyser.diagnose(task, episode.messages, finished, self.domain, turns=message_turns)
        except Exception as exc:  # an analyser bug must not stall the pipeline: record it as the diagnosis
            return _unknown(finished, f"the analyser failed: {type(exc).__name__}: {exc}")

    def _task(self, store: EventStore, domain: str, task_id: str) -> TaskSpec | None:
        key = (domain, task_id)
        if key not in self._tasks:
            self._tasks[key] = _lookup_task(store, self.domain, domain, task_id)
        return self._tasks[key]

    def _resume(self, store: EventStore) -> None:
        """Rebuild the pattern history and the episode count from the log (exactly the state of the last run)."""
        cfg = self.config
        self.tracker = PatternTracker.rebuild(
            (r.payload for r in store.read_stream(cfg.stream)),
            resolve_after=cfg.resolve_after,
            max_episode_ids=cfg.max_episode_ids,
        )
        cursor = store.cursor(cfg.consumer)
        seen = store.read(to=cursor, filter=EventFilter.of(types=[EpisodeFinished])) if cursor else iter(())
        self._episodes_seen = sum(1 for _ in seen)


def _lookup_task(store: EventStore, domain: Domain, domain_name: str, task_id: str) -> TaskSpec | None:
    """A task from its `TaskRegistered` event (stream `task-<domain>-<id>`), else from the domain's tasks."""
    for record in reversed(store.read_stream(f"task-{domain_name}-{task_id}")):
        if isinstance(record.payload, TaskRegistered) and record.payload.spec:
            try:
                return msgspec.convert(record.payload.spec, TaskSpec)
            except msgspec.ValidationError:
                break
    finder: Callable[[str], Any] | None = getattr(domain, "task", None)
    if finder is not None:
        try:
            task = finder(task_id)
            return task if isinstance(task, TaskSpec) else None
        except KeyError:
            return None
    return next((t for t in domain.tasks("base") if t.id == task_id), None)


def _turn(payload: Event) -> int | None:
    """The turn of an event that becomes a message (user, assistant, tool result)."""
    return payload.turn if isinstance(payload, UserMessage | AssistantMessage | ToolResult) else None


def _unknown(finished: EpisodeFinished, reason: str) -> Diagnosis:
    return Diagnosis(category=FailureCategory.UNKNOWN, summary=f"not analysed: {reason}", analyser="none")


def _drained(events: object) -> bool:
    """Whether the subscription has nothing more buffered right now."""
    statistics = getattr(events, "statistics", None)
    if statistics is None:
        return True
    return int(statistics().current_buffer_used) == 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _cancel_when_set(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
