"""What the episode runner needs from a policy and from a user simulator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from sentinel_async.messages import ChatMessage, TokenTrace


class PolicyTurn(msgspec.Struct, frozen=True, kw_only=True):
    """One assistant turn: the message (text and/or tool calls) and, for token-level policies, the tokens.

    `parse_error` is set when the model's raw output could not be turned into valid tool calls; the runner
    records it and answers the model with a tool error instead of crashing.
    """

    message: ChatMessage
    tokens: TokenTrace | None = None
    policy_version: int = 0
    raw_text: str | None = None
    parse_error: str | None = None
    finish_reason: str | None = None


class Policy(Protocol):
    """The agent under test or training."""

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        """Produce the next assistant turn given the conversation so far (system prompt first)."""
        ...


class UserSimulator(Protocol):
    """The simulated customer. Its message ends the episode when it contains a stop token."""

    async def respond(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        """Produce the next user message; `conversation` is seen from the agent's side (roles not flipped)."""
        ...
