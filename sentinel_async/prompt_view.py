"""What a token-level policy is shown of a conversation: tool results as it reads them, and a context window.

A conversation is recorded whole (events keep every message as it was said or returned); a policy may be
shown less of it. Two parts, both optional:

- a `ToolView` rewrites each tool result's text (for instance `sentinel_async.tools.retail.views.retail_lines`);
- a `ContextWindow` keeps the system message, the first `head` messages (the request, the authentication and
  its result) and the last `tail` messages, and replaces what lies between by one marker line. It is for
  small models: measured on the 1M CPU bootstrap (teacher-forced, DialogueExpert's test conversations), the
  share of id digits it copied right fell from 95% at prompt positions 500-999 to 40% at 1,500-1,999 and
  about 25% beyond, so it must not be asked to copy across 3,500 tokens.

Training and generation must show the same thing: the bootstrap builds its demonstrations with the same
`PromptView` its policy later renders prompts with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from sentinel_async.messages import ChatMessage

ToolView = Callable[[str, str], str]
"""How a policy reads tool results: (tool name, content) -> the text it is shown."""

OMITTED = "(earlier messages omitted)"
"""The marker a `ContextWindow` puts where it cut messages out."""


def view_tool_results(conversation: Sequence[ChatMessage], view: ToolView | None) -> list[ChatMessage]:
    """`conversation` with every tool message's content as `view` shows it (unchanged when `view` is None)."""
    if view is None:
        return list(conversation)
    return [
        msgspec.structs.replace(m, content=view(m.name or "", m.content)) if m.role == "tool" else m
        for m in conversation
    ]


class ContextWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Keep the system message, the first `head` and the last `tail` messages; `tools`: list the tools too."""

    head: int = 6
    tail: int = 8
    tools: bool = False

    def __post_init__(self) -> None:
        if self.head < 0 or self.tail < 1:
            raise ValueError(f"a context window needs head >= 0 and tail >= 1 (got {self.head}, {self.tail})")

    def apply(self, conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The messages shown: all of them while they fit, else head, a marker, and tail."""
        system = list(conversation[:1]) if conversation and conversation[0].role == "system" else []
        rest = list(conversation[len(system) :])
        if len(rest) <= self.head + self.tail:
            return [*system, *rest]
        marker = ChatMessage(role="system", content=OMITTED)
        return [*system, *rest[: self.head], marker, *rest[-self.tail :]]


@dataclass(frozen=True)
class PromptView:
    """A `ToolView` and a `ContextWindow`, either optional; the empty view shows everything as it is."""

    tool_view: ToolView | None = None
    window: ContextWindow | None = None

    def messages(self, conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The messages a prompt renders (tool results viewed, then windowed)."""
        viewed = view_tool_results(conversation, self.tool_view)
        return self.window.apply(viewed) if self.window is not None else viewed

    def tools(self, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """The tool list a prompt renders: none under a window that leaves it out."""
        if self.window is not None and not self.window.tools:
            return None
        return tools
