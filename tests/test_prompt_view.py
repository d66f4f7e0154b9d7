"""`ContextWindow` and `PromptView`: what a policy is shown of a long conversation."""

from __future__ import annotations

import pytest

from sentinel_async.messages import ChatMessage
from sentinel_async.prompt_view import OMITTED, ContextWindow, PromptView


def conversation(n: int) -> list[ChatMessage]:
    system = ChatMessage(role="system", content="policy")
    turns = [ChatMessage(role="user" if i % 2 else "assistant", content=f"m{i}") for i in range(n)]
    return [system, *turns]


def test_a_conversation_that_fits_is_shown_whole() -> None:
    window = ContextWindow(head=2, tail=3)
    assert window.apply(conversation(5)) == conversation(5)
    assert window.apply(conversation(0)) == conversation(0)


def test_a_long_conversation_keeps_the_system_message_head_and_tail_around_a_marker() -> None:
    shown = ContextWindow(head=2, tail=3).apply(conversation(9))
    assert [m.content for m in shown] == ["policy", "m0", "m1", OMITTED, "m6", "m7", "m8"]
    assert shown[3].role == "system"


def test_without_a_system_message_the_head_starts_at_the_first_message() -> None:
    shown = ContextWindow(head=1, tail=1).apply(conversation(4)[1:])
    assert [m.content for m in shown] == ["m0", OMITTED, "m3"]


def test_a_window_hides_the_tool_list_unless_asked_and_the_empty_view_shows_all() -> None:
    tools = [{"name": "t"}]
    assert PromptView(window=ContextWindow()).tools(tools) is None
    assert PromptView(window=ContextWindow(tools=True)).tools(tools) == tools
    assert PromptView().tools(tools) == tools
    assert PromptView().messages(conversation(30)) == conversation(30)


@pytest.mark.parametrize(("head", "tail"), [(-1, 2), (2, 0)])
def test_a_window_needs_room(head: int, tail: int) -> None:
    with pytest.raises(ValueError, match="context window"):
        ContextWindow(head=head, tail=tail)
