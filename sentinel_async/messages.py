"""Conversation primitives shared by tool domains, agents and events (OpenAI chat shapes)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call requested by the assistant: `arguments` is the decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a tool returned: its content as text, and whether the call failed."""

    content: str
    error: bool = False


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation, in the OpenAI chat layout."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    error: bool = False


class TokenTrace(msgspec.Struct, frozen=True, kw_only=True):
    """What a token-level policy saw and sampled in one turn: exact ids and the sampler's log-probs."""

    prompt_ids: list[int]
    sampled_ids: list[int]
    logprobs: list[float]
