"""Readable one-line rendering of events, extensible per event type with `render_payload.register`."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import msgspec

from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    EpisodeStarted,
    EventBase,
    FailureDiagnosed,
    GroupsDropped,
    PolicyUpdated,
    RecordedEvent,
    ToolResult,
    UserMessage,
)


def _short(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@functools.singledispatch
def render_payload(payload: EventBase) -> str:
    """Render a payload's fields compactly; register a function for a type to render it better."""
    fields: dict[str, Any] = msgspec.to_builtins(payload)
    fields.pop("type", None)
    return _short(" ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items()), 200)


@render_payload.register
def _(payload: EpisodeStarted) -> str:
    return (
        f"episode {payload.episode_id} task={payload.task_id} domain={payload.domain} "
        f"policy=v{payload.policy_version} seed={payload.seed}"
    )


@render_payload.register
def _(payload: UserMessage) -> str:
    return f"[turn {payload.turn}] user: {_short(payload.content)}"


@render_payload.register
def _(payload: AssistantMessage) -> str:
    parts = [f"[turn {payload.turn}] assistant:"]
    if payload.content:
        parts.append(_short(payload.content))
    for call in payload.tool_calls:
        parts.append(f"-> {call.name}({_short(json.dumps(call.arguments), 120)})")
    if payload.parse_error:
        parts.append(f"!! unparsable output: {payload.parse_error}")
    if payload.tokens is not None:
        parts.append(f"({len(payload.tokens.sampled_ids)} sampled tokens)")
    return " ".join(parts)


@render_payload.register
def _(payload: ToolResult) -> str:
    mark = "ERROR " if payload.error else ""
    return f"[turn {payload.turn}] {payload.name} -> {mark}{_short(payload.content, 140)}"


@render_payload.register
def _(payload: EpisodeFinished) -> str:
    breakdown = " ".join(f"{k}={v:g}" for k, v in payload.breakdown.items())
    return (
        f"episode {payload.episode_id} finished ({payload.termination}) reward={payload.reward:g} "
        f"{breakdown} turns={payload.turns}"
    )


@render_payload.register
def _(payload: FailureDiagnosed) -> str:
    return f"{payload.category} in {payload.episode_id}: {_short(payload.summary)}"


@render_payload.register
def _(payload: PolicyUpdated) -> str:
    metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(payload.metrics.items()))
    return f"policy v{payload.version} from {payload.batch_id} -> {payload.checkpoint} {metrics}"


@render_payload.register
def _(payload: GroupsDropped) -> str:
    groups = ", ".join(f"{g} ({reason})" for g, reason in sorted(payload.groups.items()))
    parts = [
        f"dropped {len(payload.groups)} group(s) at step {payload.step} (policy v{payload.policy_version}): {groups}"
    ]
    if payload.episodes:
        episodes = ", ".join(f"{e} ({reason})" for e, reason in sorted(payload.episodes.items()))
        parts.append(f"; episodes {episodes}")
    return _short("".join(parts), 240)


def format_timestamp(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def render(record: RecordedEvent) -> str:
    """One line: position, time, stream@version, type, and the payload's rendering."""
    return (
        f"{record.position:>7} {format_timestamp(record.timestamp)} {record.stream_id}@{record.version} "
        f"{record.type}: {render_payload(record.payload)}"
    )
