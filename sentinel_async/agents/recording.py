"""Recording an episode into an event-store stream, and rebuilding it from the log alone."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from sentinel_async.agents.episode import INVALID_TOOL_CALL
from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    EpisodeStarted,
    Event,
    NewEvent,
    RecordedEvent,
    ToolResult,
    UserMessage,
)
from sentinel_async.messages import ChatMessage
from sentinel_async.store import EventStore
from sentinel_async.tools.base import Domain


def episode_stream(episode_id: str) -> str:
    """The stream an episode's events live in."""
    return f"episode-{episode_id}"


class StreamRecorder:
    """Appends an episode's events to its own stream, each caused by the previous one.

    The stream must be new (expected version 0), so an episode id is never recorded twice. With
    `buffered=True` events are held and written in one atomic append when the episode finishes: the log
    then only ever holds whole episodes, at the price of not seeing them live.
    """

    def __init__(
        self, store: EventStore, episode_id: str, *, buffered: bool = False, correlation_id: str | None = None
    ):
        self.store = store
        self.stream_id = episode_stream(episode_id)
        self.buffered = buffered
        self._version = 0
        self._pending: list[NewEvent] = []
        self._ids = _ChainIds(episode_id)
        self._correlation_id = correlation_id

    async def record(self, event: Event) -> None:
        event_id, causation_id = self._ids.next()
        correlation = self._correlation_id or event_id
        self._correlation_id = correlation
        self._pending.append(
            NewEvent(payload=event, event_id=event_id, causation_id=causation_id, correlation_id=correlation)
        )
        if not self.buffered or isinstance(event, EpisodeFinished):
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        result = await self.store.append(self.stream_id, pending, expected_version=self._version)
        self._version = result.versions[self.stream_id]


class _ChainIds:
    """Event ids derived from the episode id (`<episode>/<n>`): deterministic and unique per stream."""

    def __init__(self, episode_id: str) -> None:
        self._episode_id = episode_id
        self._count = 0

    def next(self) -> tuple[str, str | None]:
        previous = f"{self._episode_id}/{self._count}" if self._count else None
        self._count += 1
        return f"{self._episode_id}/{self._count}", previous


class RebuiltEpisode(msgspec.Struct, frozen=True, kw_only=True):
    """An episode as the log recorded it."""

    started: EpisodeStarted
    messages: list[ChatMessage]
    finished: EpisodeFinished | None
    events: list[RecordedEvent]


def rebuild_episode(store: EventStore, episode_id: str, *, system_prompt: str = "") -> RebuiltEpisode:
    """Rebuild an episode's conversation from its stream (the system prompt is not logged; pass it)."""
    events = store.read_stream(episode_stream(episode_id))
    if not events or not isinstance(events[0].payload, EpisodeStarted):
        raise KeyError(f"no episode {episode_id!r} in the log")
    messages = [ChatMessage(role="system", content=system_prompt)] if system_prompt else []
    finished: EpisodeFinished | None = None
    for record in events:
        messages.extend(_to_messages(record.payload))
        if isinstance(record.payload, EpisodeFinished):
            finished = record.payload
    return RebuiltEpisode(started=events[0].payload, messages=messages, finished=finished, events=events)


def _to_messages(payload: Event) -> Sequence[ChatMessage]:
    match payload:
        case UserMessage(content=content):
            return [ChatMessage(role="user", content=content)]
        case AssistantMessage(content=content, tool_calls=calls):
            return [ChatMessage(role="assistant", content=content, tool_calls=tuple(calls))]
        case ToolResult(call_id=call_id, name=name, content=content, error=error):
            return [ChatMessage(role="tool", content=content, tool_call_id=call_id, name=name, error=error)]
        case _:
            return []


class ReplayMismatch(msgspec.Struct, frozen=True, kw_only=True):
    """Where re-executing a recorded episode diverged from the log."""

    position: int
    what: str
    recorded: str
    replayed: str


def verify_replay(store: EventStore, episode_id: str, domain: Domain) -> list[ReplayMismatch]:
    """Re-execute an episode's recorded tool calls on a fresh fork; list every divergence from the log.

    Checks each tool result, each recorded post-write state hash, and the final state hash.
    """
    episode = rebuild_episode(store, episode_id)
    env = domain.new_environment()
    calls = {c.id: c for e in episode.events if isinstance(e.payload, AssistantMessage) for c in e.payload.tool_calls}
    mismatches: list[ReplayMismatch] = []
    for record in episode.events:
        payload = record.payload
        if not isinstance(payload, ToolResult) or payload.call_id not in calls:
            continue
        call = calls[payload.call_id]
        if call.name == INVALID_TOOL_CALL:
            continue
        outcome = env.call(call)
        if outcome.content != payload.content or outcome.error != payload.error:
            mismatches.append(ReplayMismatch(position=record.position, what="tool result", recorded=payload.content,
                                             replayed=outcome.content))  # fmt: skip
        if payload.state_hash is not None and env.state_hash() != payload.state_hash:
            mismatches.append(ReplayMismatch(position=record.position, what="state hash after write",
                                             recorded=payload.state_hash, replayed=env.state_hash()))  # fmt: skip
    final = episode.finished.final_state_hash if episode.finished else None
    if final is not None and env.state_hash() != final:
        position = episode.events[-1].position
        mismatches.append(ReplayMismatch(position=position, what="final state hash", recorded=final,
                                         replayed=env.state_hash()))  # fmt: skip
    return mismatches
