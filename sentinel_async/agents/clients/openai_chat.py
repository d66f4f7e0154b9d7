"""An async OpenAI-compatible chat-completions client with tool calling: the agent policy and the LLM user.

`ChatPolicy` implements `Policy`; `ChatUser` implements `UserSimulator` with tau2's semantics (roles flipped,
tool traffic hidden, system prompt = tau2's simulation guidelines + the task's user instructions).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from sentinel_async.agents.clients._http import ClientConfig, HttpTransport, SleepFn
from sentinel_async.agents.clients.errors import MalformedResponseError
from sentinel_async.agents.clients.qwen_format import (
    decode_arguments,
    new_call_id,
    split_think,
    tool_schemas,
    validate_call,
)
from sentinel_async.agents.clients.wire import ChatCompletionResponse, WireChatChoice
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.messages import ChatMessage, ToolCall

__all__ = [
    "OUT_OF_SCOPE",
    "STOP",
    "STOP_TOKENS",
    "TRANSFER",
    "ChatClient",
    "ChatPolicy",
    "ChatUser",
    "ClientConfig",
    "from_openai_tool_calls",
    "is_stop_message",
    "load_user_guidelines",
    "to_openai_messages",
    "user_view",
]

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"
OUT_OF_SCOPE = "###OUT-OF-SCOPE###"
STOP_TOKENS = (STOP, TRANSFER, OUT_OF_SCOPE)

_FALLBACK_GUIDELINES = f"""# User Simulation Guidelines
You are playing the role of a customer contacting a customer service representative.
Follow the scenario instructions strictly, write one message at a time, never invent information the
instructions do not give, and disclose information progressively, only when asked.
- If the instruction goal is satisfied, generate the '{STOP}' token to end the conversation.
- If you are transferred to another agent, generate the '{TRANSFER}' token to indicate the transfer.
- If the scenario does not give enough information to continue, generate the '{OUT_OF_SCOPE}' token."""


@functools.cache
def load_user_guidelines() -> str:
    """tau2's `simulation_guidelines.md`, read from the installed tau2 package, or a built-in fallback."""
    spec = importlib.util.find_spec("tau2")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "data" / "tau2" / "user_simulator" / "simulation_guidelines.md"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return _FALLBACK_GUIDELINES


def is_stop_message(message: ChatMessage) -> bool:
    """Whether a user message ends the episode (contains a tau2 stop token)."""
    return any(token in message.content for token in STOP_TOKENS)


def to_openai_messages(conversation: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Our messages as OpenAI chat messages (tool-call arguments as JSON strings)."""
    out: list[dict[str, Any]] = []
    for m in conversation:
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "assistant" and m.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in m.tool_calls
            ]
        if m.role == "tool":
            msg["tool_call_id"] = m.tool_call_id or ""
        out.append(msg)
    return out


def from_openai_tool_calls(
    choice: WireChatChoice, tools: Sequence[dict[str, Any]] | None
) -> tuple[tuple[ToolCall, ...], str | None]:
    """Decode a choice's tool calls: `(calls, parse_error)`; on any error `calls` is empty."""
    schemas = tool_schemas(tools) if tools else None
    calls: list[ToolCall] = []
    for i, wire in enumerate(choice.message.tool_calls or (), start=1):
        where = f"tool call {i} ({wire.function.name!r})"
        args = decode_arguments(wire.function.arguments, where)
        if isinstance(args, str):
            return (), args
        if schemas is not None and (problem := validate_call(wire.function.name, args, schemas)) is not None:
            return (), f"tool call {i}: {problem}"
        calls.append(ToolCall(id=wire.id or new_call_id(), name=wire.function.name, arguments=args))
    return tuple(calls), None


def user_view(conversation: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation as the user LLM sees it (tau2's `flip_roles`).

    The agent's text messages become `user`, the simulator's own messages `assistant`; system prompts, tool
    messages and assistant messages carrying tool calls (sent to the environment, not the user) are dropped.
    """
    out: list[dict[str, Any]] = []
    for m in conversation:
        if m.role == "user":
            out.append({"role": "assistant", "content": m.content})
        elif m.role == "assistant" and not m.tool_calls:
            out.append({"role": "user", "content": m.content})
    return out


class ChatClient:
    """One model on an OpenAI-compatible server: `complete(messages, tools)` returns the first choice."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self.config = config
        self.transport = HttpTransport(config, session=session, rng=rng, sleep=sleep)

    async def complete(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> tuple[WireChatChoice, ChatCompletionResponse]:
        """POST /chat/completions and return `(first choice, whole response)`."""
        cfg = self.config
        payload: dict[str, Any] = {
            "model": cfg.model,
            "messages": messages,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
        }
        if cfg.seed is not None:
            payload["seed"] = cfg.seed
        if tools:
            payload["tools"] = list(tools)
            payload["tool_choice"] = "auto"
        response = await self.transport.post("/chat/completions", payload, ChatCompletionResponse)
        if not response.choices:
            raise MalformedResponseError(self.transport.url("/chat/completions"), "`choices` is empty")
        return response.choices[0], response

    async def aclose(self) -> None:
        """Close the HTTP session (if this client created it)."""
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ChatPolicy(ChatClient):
    """The agent as a chat-completions model (`Policy`). Set `policy_version` when the served weights change.

    A tool call whose arguments are not a JSON object (or, with `validate_tools`, names an unknown tool or
    misses a required argument) does not raise: the turn carries `parse_error`, no tool calls, and
    `raw_text` with the server's raw content and tool calls.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        validate_tools: bool = True,
        policy_version: int = 0,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        super().__init__(config, session=session, rng=rng, sleep=sleep)
        self.validate_tools = validate_tools
        self.policy_version = policy_version

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        """Produce the next assistant turn."""
        version = self.policy_version
        choice, _ = await self.complete(to_openai_messages(conversation), tools)
        raw_content = choice.message.content or ""
        _, content, think_error = split_think(raw_content)
        calls, parse_error = from_openai_tool_calls(choice, tools if self.validate_tools else None)
        parse_error = think_error or parse_error
        raw_text = raw_content
        if choice.message.tool_calls:
            raw_calls = [
                {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                for c in choice.message.tool_calls
            ]
            raw_text = raw_content + ("\n" if raw_content else "") + json.dumps(raw_calls)
        if parse_error is not None:
            calls, content = (), raw_content
        else:
            content = content.strip()
        message = ChatMessage(role="assistant", content=content, tool_calls=calls)
        return PolicyTurn(
            message=message,
            policy_version=version,
            raw_text=raw_text,
            parse_error=parse_error,
            finish_reason=choice.finish_reason,
        )


class ChatUser(ChatClient):
    """The tau2 LLM user simulator (`UserSimulator`) for one task's `instructions`."""

    def __init__(
        self,
        config: ClientConfig,
        instructions: str,
        *,
        guidelines: str | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        super().__init__(config, session=session, rng=rng, sleep=sleep)
        self.instructions = instructions
        self.guidelines = guidelines if guidelines is not None else load_user_guidelines()

    @property
    def system_prompt(self) -> str:
        """tau2's user system prompt: the guidelines, then the instructions inside `<scenario>` tags."""
        return f"{self.guidelines}\n\n<scenario>\n{self.instructions}\n</scenario>".strip()

    def messages_for(self, conversation: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        """The exact messages sent to the user LLM for `conversation` (agent's view)."""
        return [{"role": "system", "content": self.system_prompt}, *user_view(conversation)]

    async def respond(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        """The simulated customer's next message (check `is_stop_message` to end the episode)."""
        choice, _ = await self.complete(self.messages_for(conversation))
        _, content, _ = split_think(choice.message.content or "")
        return ChatMessage(role="user", content=content.strip())
