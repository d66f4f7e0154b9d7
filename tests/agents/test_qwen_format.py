"""Parsing Qwen-style generations: think blocks, content, `<tool_call>` blocks and precise errors."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel_async.agents.clients.qwen_format import format_tool_call, parse_qwen_output, split_think
from sentinel_async.messages import ToolCall


def ids() -> Any:
    counter = iter(range(100))
    return lambda: f"call_{next(counter)}"


def test_plain_text() -> None:
    parsed = parse_qwen_output("  Hello there.\n")
    assert (parsed.content, parsed.tool_calls, parsed.parse_error) == ("Hello there.", (), None)


def test_text_then_two_tool_calls(order_tools: list[dict[str, Any]]) -> None:
    text = (
        "Let me check.\n"
        + format_tool_call("get_order_details", {"order_id": "#W1"})
        + "\n"
        + format_tool_call("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})
    )
    parsed = parse_qwen_output(text, tools=order_tools, id_factory=ids())
    assert parsed.parse_error is None
    assert parsed.content == "Let me check."
    assert parsed.tool_calls == (
        ToolCall(id="call_0", name="get_order_details", arguments={"order_id": "#W1"}),
        ToolCall(id="call_1", name="cancel_pending_order", arguments={"order_id": "#W1", "reason": "no longer needed"}),
    )


def test_compact_block_and_missing_arguments() -> None:
    parsed = parse_qwen_output('<tool_call>{"name": "list_all_product_types"}</tool_call>', id_factory=ids())
    assert parsed.tool_calls == (ToolCall(id="call_0", name="list_all_product_types"),)
    assert parsed.content == ""


def test_think_is_split_off() -> None:
    parsed = parse_qwen_output("<think>\nneed the order id\n</think>\n\nWhat is your order id?")
    assert parsed.reasoning == "need the order id"
    assert parsed.content == "What is your order id?"
    # The template may have opened the block already: only `</think>` appears in the generation.
    assert split_think("reasoning here</think>Answer") == ("reasoning here", "Answer", None)
    assert split_think("no reasoning") == (None, "no reasoning", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<tool_call>{"name": "x", "arguments": {"a": 1}</tool_call>', "tool call 1: invalid JSON"),
        ('<tool_call>["x"]</tool_call>', "expected a JSON object with 'name' and 'arguments', got list"),
        ('<tool_call>{"arguments": {}}</tool_call>', "tool call 1: missing or empty 'name'"),
        (
            '<tool_call>{"name": "x", "arguments": "{}"}</tool_call>',
            "'arguments' of 'x' must be a JSON object, got str",
        ),
        ('<tool_call>{"name": "x", "arguments": {}}', "unclosed <tool_call>"),
        ('<tool_call>{"name": "x", "arguments": {}}</tool_call> and more', "unexpected text after tool call 1"),
        ("oops </tool_call>", "</tool_call> without <tool_call>"),
        ("<think>still thinking", "unclosed <think>"),
        ("<tool_call><tool_call>{}</tool_call>", "nested <tool_call>"),
    ],
)
def test_malformed_output_gives_precise_error(text: str, expected: str) -> None:
    parsed = parse_qwen_output(text)
    assert parsed.parse_error is not None
    assert expected in parsed.parse_error
    assert parsed.tool_calls == ()


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("refund", {}, "unknown tool 'refund' (offered: cancel_pending_order, get_order_details)"),
        ("cancel_pending_order", {"order_id": "#W1"}, "missing required argument(s) 'reason'"),
        ("get_order_details", {"order_id": "#W1", "force": True}, "unexpected argument(s) 'force'"),
    ],
)
def test_validation_against_offered_tools(
    order_tools: list[dict[str, Any]], name: str, arguments: dict[str, Any], expected: str
) -> None:
    parsed = parse_qwen_output(format_tool_call(name, arguments), tools=order_tools)
    assert parsed.parse_error is not None
    assert expected in parsed.parse_error
    assert parsed.tool_calls == ()


def test_error_keeps_the_generated_text() -> None:
    text = 'Sure.\n<tool_call>{"name": "x", "arguments": {</tool_call>'
    parsed = parse_qwen_output(text)
    assert parsed.content == text
