"""Parse Qwen-style generations: an optional leading `<think>...</think>`, text, then `<tool_call>` blocks.

A block is `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Anything the model got wrong is reported
as a precise `parse_error` instead of an exception, so the episode runner can answer it with a tool error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from sentinel_async.messages import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class ParsedOutput(msgspec.Struct, frozen=True, kw_only=True):
    """A generation split into reasoning, visible content and tool calls.

    When `parse_error` is set, `tool_calls` is empty (nothing is executable) and `content` is the whole text
    after the reasoning, exactly as generated.
    """

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    parse_error: str | None = None


def new_call_id() -> str:
    """A fresh tool-call id in OpenAI's style (`call_` + 24 hex digits)."""
    return "call_" + uuid.uuid4().hex[:24]


def split_think(text: str) -> tuple[str | None, str, str | None]:
    """Split a leading reasoning block off `text`: `(reasoning, rest, error)`.

    Handles `<think>...</think>rest`, and `...</think>rest` where the chat template already opened the block.
    An unclosed `<think>` gives `error` (generation stopped while thinking) and `rest` = ''.
    """
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        body = stripped[len(THINK_OPEN) :]
        end = body.find(THINK_CLOSE)
        if end < 0:
            return body.strip(), "", "unclosed <think> block: the generation stopped while reasoning"
        return body[:end].strip(), body[end + len(THINK_CLOSE) :].lstrip(), None
    end = text.find(THINK_CLOSE)
    if end >= 0 and THINK_OPEN not in text[:end] and TOOL_CALL_OPEN not in text[:end]:
        return text[:end].strip(), text[end + len(THINK_CLOSE) :].lstrip(), None
    return None, text, None


def tool_schemas(tools: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map tool name -> JSON-schema `parameters` for OpenAI-style tool specs (`{"type": "function", ...}`)."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        fn = tool.get("function", tool)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = params if isinstance(params, dict) else {}
    return out


def validate_call(name: str, arguments: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> str | None:
    """Check a call against the offered tools: unknown tool, missing required or unexpected arguments."""
    if name not in schemas:
        offered = ", ".join(sorted(schemas)) or "none"
        return f"unknown tool {name!r} (offered: {offered})"
    params = schemas[name]
    required = params.get("required") or []
    missing = [r for r in required if isinstance(r, str) and r not in arguments]
    if missing:
        return f"tool {name!r} is missing required argument(s) {', '.join(map(repr, missing))}"
    props = params.get("properties")
    if isinstance(props, dict) and params.get("additionalProperties", False) is not True:
        extra = [k for k in arguments if k not in props]
        if extra:
            return f"tool {name!r} got unexpected argument(s) {', '.join(map(repr, extra))}"
    return None


def decode_call(payload: str, where: str) -> tuple[str, dict[str, Any]] | str:
    """Decode one `{"name": ..., "arguments": {...}}` JSON text: `(name, arguments)` or an error string."""
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError as e:
        return f"{where}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    if not isinstance(obj, dict):
        return f"{where}: expected a JSON object with 'name' and 'arguments', got {type(obj).__name__}"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return f"{where}: missing or empty 'name'"
    arguments = obj.get("arguments", {})
    if not isinstance(arguments, dict):
        return f"{where}: 'arguments' of {name!r} must be a JSON object, got {type(arguments).__name__}"
    return name, arguments


def decode_arguments(arguments: str, where: str) -> dict[str, Any] | str:
    """Decode an OpenAI `function.arguments` JSON string: the object, or an error string."""
    try:
        obj = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as e:
        return f"{where}: arguments are not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    if not isinstance(obj, dict):
        return f"{where}: arguments must be a JSON object, got {type(obj).__name__}"
    return obj


def parse_qwen_output(
    text: str,
    *,
    tools: Sequence[dict[str, Any]] | None = None,
    id_factory: Callable[[], str] = new_call_id,
) -> ParsedOutput:
    """Parse generated text (without the end-of-turn token) into content and tool calls.

    With `tools`, each call is also checked against the offered tool names and their required arguments.
    """
    reasoning, rest, error = split_think(text)
    if error is not None:
        return ParsedOutput(content=rest, reasoning=reasoning, parse_error=error)
    start = rest.find(TOOL_CALL_OPEN)
    stray = rest.find(TOOL_CALL_CLOSE)
    if start < 0:
        if stray >= 0:
            return ParsedOutput(
                content=rest, reasoning=reasoning, parse_error=f"{TOOL_CALL_CLOSE} without {TOOL_CALL_OPEN}"
            )
        return ParsedOutput(content=rest.strip(), reasoning=reasoning)

    def fail(reason: str) -> ParsedOutput:
        return ParsedOutput(content=rest, reasoning=reasoning, parse_error=reason)

    if 0 <= stray < start:
        return fail(f"{TOOL_CALL_CLOSE} before the first {TOOL_CALL_OPEN}")
    content = rest[:start].strip()
    schemas = tool_schemas(tools) if tools is not None else None
    calls: list[ToolCall] = []
    pos = start
    while pos < len(rest):
        if not rest.startswith(TOOL_CALL_OPEN, pos):
            return fail(f"unexpected text after tool call {len(calls)}: {rest[pos : pos + 40]!r}")
        body_start = pos + len(TOOL_CALL_OPEN)
        end = rest.find(TOOL_CALL_CLOSE, body_start)
        where = f"tool call {len(calls) + 1}"
        if end < 0:
            return fail(f"{where}: unclosed {TOOL_CALL_OPEN} (the generation stopped inside a tool call)")
        body = rest[body_start:end]
        if TOOL_CALL_OPEN in body:
            return fail(f"{where}: nested {TOOL_CALL_OPEN}")
        decoded = decode_call(body, where)
        if isinstance(decoded, str):
            return fail(decoded)
        name, arguments = decoded
        if schemas is not None and (problem := validate_call(name, arguments, schemas)) is not None:
            return fail(f"{where}: {problem}")
        calls.append(ToolCall(id=id_factory(), name=name, arguments=arguments))
        pos = end + len(TOOL_CALL_CLOSE)
        while pos < len(rest) and rest[pos].isspace():
            pos += 1
    return ParsedOutput(content=content, tool_calls=tuple(calls), reasoning=reasoning)


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """Render one call the way Qwen models write it (used by fakes and tests)."""
    return f"{TOOL_CALL_OPEN}\n{json.dumps({'name': name, 'arguments': arguments})}\n{TOOL_CALL_CLOSE}"
