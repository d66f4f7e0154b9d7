"""A trajectory as the analysers see it: every tool call with its turn, result, context and protocol problems."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sentinel_async.agents.clients.qwen_format import validate_call
from sentinel_async.agents.episode import INVALID_TOOL_CALL
from sentinel_async.messages import ChatMessage, ToolCall

ProtocolProblem = Literal["unparsable", "unknown_tool", "bad_arguments", "text_with_call", "several_calls"]
FATAL_PROBLEMS: frozenset[str] = frozenset({"unparsable", "unknown_tool", "bad_arguments"})
"""Protocol problems that keep the intended call from running (the others are style violations)."""

_YES = re.compile(r"\b(yes|yeah|yep|yup|i confirm|confirmed|go ahead|please proceed)\b")
_NO = re.compile(r"^\W*(no|nope|don't|do not)\b")
_CONFIRM_CUES = ("confirm", "yes/no", "proceed", "go ahead", "shall i", "should i", "would you like me to")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "array": (list,),
    "object": (dict,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def is_explicit_yes(text: str) -> bool:
    """Whether a user message is an explicit yes (a `yes`-like word, not opening with a refusal)."""
    lowered = text.strip().lower()
    return bool(_YES.search(lowered)) and not _NO.match(lowered)


def asks_confirmation(text: str) -> bool:
    """Whether an assistant message asks the user to confirm something."""
    lowered = text.lower()
    return any(cue in lowered for cue in _CONFIRM_CUES)


class CallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call of the assistant, where it happened and what it returned."""

    call: ToolCall
    index: int  # index of the assistant message carrying it
    turn: int  # the turn reported in evidence
    result: str | None  # the tool result's content (None: never answered)
    error: bool
    confirmed: bool  # an explicit yes to a confirmation request arrived since the previous write
    user_text: str = ""  # the last user message before the call
    problem: ProtocolProblem | None = None
    problem_detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.error


class StyleIssue(msgspec.Struct, frozen=True, kw_only=True):
    """A protocol violation of a whole assistant turn (text with a call, several calls)."""

    kind: ProtocolProblem
    turn: int
    detail: str


class SkippedWrite(msgspec.Struct, frozen=True, kw_only=True):
    """The user said yes to a confirmation request, and the agent answered in text without writing."""

    turn: int
    user_text: str
    agent_text: str


class DeclinedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The agent asked to confirm something and the user's answer was not an explicit yes."""

    turn: int
    agent_text: str
    user_text: str


class Trajectory(msgspec.Struct, frozen=True, kw_only=True):
    """The parsed trajectory."""

    calls: list[CallRecord]
    style_issues: list[StyleIssue]
    skipped_writes: list[SkippedWrite]
    declined: list[DeclinedRequest]
    assistant_texts: list[tuple[int, str]]
    last_turn: int


def render_call(call: ToolCall, limit: int = 400) -> str:
    """`name(key=value, ...)` with JSON values, truncated to `limit` characters."""
    args = ", ".join(f"{key}={json.dumps(value, sort_keys=True)}" for key, value in call.arguments.items())
    text = f"{call.name}({args})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_problem(call: ToolCall, schemas: dict[str, dict[str, Any]]) -> str | None:
    props = schemas.get(call.name, {}).get("properties")
    if not isinstance(props, dict):
        return None
    for key, value in call.arguments.items():
        spec = props.get(key)
        kind = spec.get("type") if isinstance(spec, dict) else None
        expected = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
        if expected is not None and (not isinstance(value, expected) or (kind != "boolean" and value is True)):
            return f"argument {key!r} of {call.name!r} should be a JSON {kind}, got {type(value).__name__}"
    return None


def call_problem(call: ToolCall, schemas: dict[str, dict[str, Any]]) -> tuple[ProtocolProblem, str] | None:
    """A malformed call: unparsable output, an unknown tool, or arguments that do not fit the schema."""
    if call.name == INVALID_TOOL_CALL:
        return "unparsable", "the model's output could not be parsed into a tool call"
    if call.name not in schemas:
        return "unknown_tool", f"unknown tool {call.name!r}"
    problem = validate_call(call.name, call.arguments, schemas) or _type_problem(call, schemas)
    return ("bad_arguments", problem) if problem else None


def parse_trajectory(
    messages: Sequence[ChatMessage],
    schemas: dict[str, dict[str, Any]],
    is_write: Any,
    turns: Sequence[int] | None = None,
) -> Trajectory:
    """Index every assistant tool call with its result, confirmation state and protocol problems.

    `turns[i]` is the recorded turn of `messages[i]` (the message index when not given).
    """
    turn_of = list(turns) if turns is not None else list(range(len(messages)))
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id is not None}
    calls: list[CallRecord] = []
    style: list[StyleIssue] = []
    skipped: list[SkippedWrite] = []
    texts: list[tuple[int, str]] = []
    declined: list[DeclinedRequest] = []
    question: tuple[int, str] | None = None  # the agent's last message, while it asks to confirm, unanswered
    yes_pending = False  # an explicit yes not yet used by a write
    awaiting_write: tuple[str, str] | None = None  # (question, yes) after a confirmation request was answered yes
    last_assistant_text = ""
    last_user_text = ""
    for index, message in enumerate(messages):
        turn = turn_of[index]
        if message.role == "user":
            last_user_text = message.content
            if question is not None and not is_explicit_yes(message.content):
                declined.append(DeclinedRequest(turn=question[0], agent_text=question[1], user_text=message.content))
            question = None
            # A yes counts only as the answer to a confirmation request.
            yes_pending = is_explicit_yes(message.content) and asks_confirmation(last_assistant_text)
            awaiting_write = (last_assistant_text, message.content) if yes_pending else None
            continue
        if message.role != "assistant":
            continue
        real_calls = [c for c in message.tool_calls if c.name != INVALID_TOOL_CALL]
        if message.content.strip() and real_calls:
            style.append(StyleIssue(kind="text_with_call", turn=turn, detail=message.content.strip()[:200]))
        if len(message.tool_calls) > 1:
            names = ", ".join(c.name for c in message.tool_calls)
            style.append(
                StyleIssue(kind="several_calls", turn=turn, detail=f"{len(message.tool_calls)} calls: {names}")
            )
        question = None
        if message.content.strip() and not message.tool_calls:
            texts.append((turn, message.content))
            last_assistant_text = message.content
            question = (turn, message.content) if asks_confirmation(message.content) else None
            if awaiting_write is not None:
                skipped.append(SkippedWrite(turn=turn, user_text=awaiting_write[1], agent_text=message.content))
                awaiting_write = None
        for call in message.tool_calls:
            result = results.get(call.id)
            found = call_problem(call, schemas)
            writes = found is None and bool(is_write(call.name))
            calls.append(
                CallRecord(
                    call=call,
                    index=index,
                    turn=turn,
                    result=result.content if result is not None else None,
                    error=result.error if result is not None else False,
                    confirmed=yes_pending,
                    user_text=last_user_text,
                    problem=found[0] if found else None,
                    problem_detail=found[1] if found else "",
                )
            )
            if writes and result is not None and not result.error:
                yes_pending = False
                awaiting_write = None
    last_turn = turn_of[-1] if turn_of else 0
    return Trajectory(
        calls=calls,
        style_issues=style,
        skipped_writes=skipped,
        declined=declined,
        assistant_texts=texts,
        last_turn=last_turn,
    )
