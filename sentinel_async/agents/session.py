"""An interactive conversation with the tool agent, for embedding the runtime in an app (a chat server, a bot).

A human plays the user. Each `send` runs the agent until it speaks: every tool call is executed on the session's
own forked environment and unparsable model output is answered with a tool error, exactly as in
`EpisodeRunner`. Every step is recorded through an `EpisodeRecorder` (task id ``interactive``), so the log alone
rebuilds the transcript (`rebuild_episode`). One session handles one message at a time; sessions are independent.

    session = AgentSession(domain=RetailDomain(), policy=ChatPolicy(config), recorder=StreamRecorder(store, sid),
                           session_id=sid)
    reply = await session.send("Hi, I want to cancel an order")
    ...
    await session.close()
"""

from __future__ import annotations

import asyncio
import enum
import uuid

import msgspec

from sentinel_async.agents.episode import (
    AGENT_STOP_TOKEN,
    GREETING,
    EpisodeRecorder,
    Termination,
    assistant_step,
    tool_step,
)
from sentinel_async.agents.protocols import Policy
from sentinel_async.errors import SentinelError
from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    EpisodeStarted,
    Event,
    FaultRecorded,
    UserMessage,
)
from sentinel_async.messages import ChatMessage
from sentinel_async.tools.base import Domain

INTERACTIVE_TASK_ID = "interactive"
"""The task id recorded for interactive sessions."""


class SessionError(SentinelError):
    """Root of the errors an `AgentSession` raises."""


class SessionClosedError(SessionError):
    """Raised when a message is sent to a session that was closed or that the agent ended."""


class AgentUnavailableError(SessionError):
    """Raised when the policy failed (a dead or overloaded model server); the message says why.

    The session stays open: the unanswered user message stays in the transcript, and a later `send` continues.
    """


class TurnEnd(enum.StrEnum):
    """Why a `send` returned."""

    REPLY = "reply"
    """The agent spoke to the user."""
    TOOL_LIMIT = "tool_limit"
    """The agent made `max_tool_calls` calls without speaking; the session continues with the next message."""
    AGENT_STOP = "agent_stop"
    """The agent ended the conversation (``###STOP###``)."""
    TOO_MANY_ERRORS = "too_many_errors"
    """The session reached `max_errors` tool errors and ended."""


class SessionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Limits of a session. `greeting` opens the conversation as in tau2 (empty: no greeting)."""

    max_tool_calls: int = 20
    """Tool calls allowed per user message before the turn is cut short."""
    max_errors: int = 10
    """Tool errors (failed tools and unparsable output) over the whole session before it ends."""
    greeting: str = GREETING
    hash_after_writes: bool = True


class ToolExchange(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call the agent made during a turn, and what the tool answered."""

    id: str
    name: str
    arguments: dict[str, object]
    content: str
    error: bool = False


class SessionReply(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to one user message: the agent's text (without the stop token), its tool calls, and how it ended."""

    content: str
    tool_calls: list[ToolExchange]
    ended: bool
    """Whether the conversation is over (the agent stopped it, or too many tool errors)."""
    stop_reason: TurnEnd


class AgentSession:
    """One conversation between a human and the tool agent, on its own forked environment."""

    def __init__(
        self,
        *,
        domain: Domain,
        policy: Policy,
        recorder: EpisodeRecorder | None = None,
        config: SessionConfig | None = None,
        session_id: str | None = None,
        system_prompt: str | None = None,
        policy_name: str = "",
        policy_version: int = 0,
    ) -> None:
        self.session_id = session_id or uuid.uuid4().hex
        self.domain = domain
        self.policy = policy
        self.config = config or SessionConfig()
        self.policy_name = policy_name
        self.policy_version = policy_version
        self._recorder = recorder
        self._env = domain.new_environment()
        self._tools = domain.tool_schemas()
        prompt = domain.policy() if system_prompt is None else system_prompt
        self._messages = [ChatMessage(role="system", content=prompt)]
        if self.config.greeting:
            self._messages.append(ChatMessage(role="assistant", content=self.config.greeting))
        self._lock = asyncio.Lock()
        self._started = False
        self._termination: str | None = None
        self._turn = 0
        self._steps = 0
        self._tool_calls = 0
        self._errors = 0

    @property
    def messages(self) -> list[ChatMessage]:
        """The conversation so far, system prompt first (a copy)."""
        return list(self._messages)

    @property
    def transcript(self) -> list[ChatMessage]:
        """The conversation without the system prompt: what `rebuild_episode` gives back from the log."""
        return [m for m in self._messages if m.role != "system"]

    @property
    def closed(self) -> bool:
        """Whether the session is over (closed, or ended by the agent)."""
        return self._termination is not None

    @property
    def termination(self) -> str | None:
        """Why the session ended (`agent_stop`, `too_many_errors`, `user_stop` when closed), or None."""
        return self._termination

    @property
    def tool_errors(self) -> int:
        return self._errors

    def state_hash(self) -> str:
        """The hash of the session's environment state."""
        return self._env.state_hash()

    async def start(self) -> None:
        """Record the session's start and greeting (done by the first `send` if not called)."""
        async with self._lock:
            await self._start()

    async def send(self, text: str) -> SessionReply:
        """Give the agent the user's message and run it until it speaks, ends the session or hits a limit.

        Raises `SessionClosedError` if the session is over, `AgentUnavailableError` if the policy failed.
        """
        async with self._lock:
            if self._termination is not None:
                raise SessionClosedError(f"session {self.session_id!r} is over ({self._termination}); start a new one")
            await self._start()
            self._turn += 1
            self._steps += 1
            self._messages.append(ChatMessage(role="user", content=text))
            await self._record(UserMessage(episode_id=self.session_id, turn=self._turn, content=text))
            return await self._agent_turn()

    async def close(self) -> None:
        """End the session (recorded as `EpisodeFinished`); closing twice does nothing."""
        async with self._lock:
            if self._termination is None:
                await self._start()
                await self._finish(Termination.USER_STOP)

    async def _agent_turn(self) -> SessionReply:
        exchanges: list[ToolExchange] = []
        while True:
            self._turn += 1
            try:
                policy_turn = await self.policy.act(self._messages, self._tools)
            except SentinelError as exc:
                await self._record(FaultRecorded(component="policy", message=str(exc), episode_id=self.session_id))
                raise AgentUnavailableError(f"the agent's model failed: {exc}") from exc
            assistant, event = assistant_step(self.session_id, self._turn, policy_turn)
            self._messages.append(assistant)
            await self._record(event)
            self._steps += 1
            if AGENT_STOP_TOKEN in assistant.content:
                return await self._end(assistant, exchanges, TurnEnd.AGENT_STOP)
            if not assistant.tool_calls:
                return _reply(assistant, exchanges, TurnEnd.REPLY)
            self._turn += 1
            for call in assistant.tool_calls:
                tool_message, result = tool_step(
                    self.domain, self._env, call, policy_turn.parse_error,
                    episode_id=self.session_id, turn=self._turn, hash_after_writes=self.config.hash_after_writes,
                )  # fmt: skip
                self._messages.append(tool_message)
                await self._record(result)
                self._errors += int(result.error)
                self._tool_calls += 1
                exchanges.append(
                    ToolExchange(id=call.id, name=call.name, arguments=dict(call.arguments), content=result.content,
                                 error=result.error)
                )  # fmt: skip
            self._steps += 1
            if self._errors >= self.config.max_errors:
                return await self._end(assistant, exchanges, TurnEnd.TOO_MANY_ERRORS)
            if len(exchanges) >= self.config.max_tool_calls:
                return _reply(None, exchanges, TurnEnd.TOOL_LIMIT)

    async def _end(self, last: ChatMessage, exchanges: list[ToolExchange], why: TurnEnd) -> SessionReply:
        await self._finish(Termination(why.value))
        return _reply(last if why is TurnEnd.AGENT_STOP else None, exchanges, why)

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._record(
            EpisodeStarted(
                episode_id=self.session_id,
                task_id=INTERACTIVE_TASK_ID,
                domain=self.domain.name,
                policy_version=self.policy_version,
                seed=0,
                policy=self.policy_name,
                user="human",
            )
        )
        if self.config.greeting:
            await self._record(AssistantMessage(episode_id=self.session_id, turn=0, content=self.config.greeting))

    async def _finish(self, termination: Termination) -> None:
        self._termination = termination.value
        await self._record(
            EpisodeFinished(
                episode_id=self.session_id,
                task_id=INTERACTIVE_TASK_ID,
                termination=termination.value,
                reward=0.0,
                turns=self._turn,
                policy_version=self.policy_version,
                final_state_hash=self._env.state_hash(),
                info={"steps": self._steps, "tool_calls": self._tool_calls, "tool_errors": self._errors},
            )
        )

    async def _record(self, event: Event) -> None:
        if self._recorder is not None:
            await self._recorder.record(event)


def _reply(message: ChatMessage | None, exchanges: list[ToolExchange], why: TurnEnd) -> SessionReply:
    content = message.content.replace(AGENT_STOP_TOKEN, "").strip() if message is not None else ""
    ended = why in (TurnEnd.AGENT_STOP, TurnEnd.TOO_MANY_ERRORS)
    return SessionReply(content=content, tool_calls=exchanges, ended=ended, stop_reason=why)
