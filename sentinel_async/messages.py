"""Conversation primitives shared by tool domains, agents and events (OpenAI chat shapes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


ToolView = Callable[[str, str], str]
"""How a policy reads tool results: (tool name, content) -> the text it is shown (for instance
`sentinel_async.tools.retail.views.retail_lines`). Events, tools and evaluators keep the content as returned."""


def view_tool_results(conversation: Sequence[ChatMessage], view: ToolView | None) -> list[ChatMessage]:
    """`conversation` with every tool message's content as `view` shows it (unchanged when `view` is None)."""
    if view is None:
        return list(conversation)
    return [
        msgspec.structs.replace(m, content=view(m.name or "", m.content)) if m.role == "tool" else m
        for m in conversation
    ]


class TokenTrace(msgspec.Struct, frozen=True, kw_only=True):
    """What a token-level policy saw and sampled in one turn: exact ids and the sampler's log-probs."""

    prompt_ids: list[int]
    sampled_ids: list[int]
    logprobs: list[float]
