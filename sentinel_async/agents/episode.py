"""The episode runner: a policy, a simulated user and a tool environment, following tau2's orchestrator rules.

Rules (tau2's `Orchestrator`): the agent opens with a fixed greeting; user and agent alternate; every tool
call of an assistant message is executed and its results go back to the agent; a user message with a stop
token ends the episode (`user_stop`), an agent message with ``###STOP###`` too (`agent_stop`); every message
passed is a step, and once `max_steps` steps or `max_errors` tool errors are reached (checked whenever the
next message does not go to the environment) the episode ends and scores 0.

Every step is recorded as an event through an `EpisodeRecorder`. Faults never crash a run: a policy's
unparsable output is recorded and answered with a tool error; a policy or user that raises (a dead model
server) ends the episode with `agent_error` / `user_error` and a `FaultRecorded` event.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from sentinel_async.agents.protocols import Policy, PolicyTurn, UserSimulator
from sentinel_async.errors import SentinelError
from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    EpisodeStarted,
    Event,
    FaultRecorded,
    Purpose,
    ToolResult,
    UserMessage,
)
from sentinel_async.logs import get_logger
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import Domain, Environment, TaskSpec
from sentinel_async.tools.retail.reward import RewardBreakdown

_log = get_logger("episode")

GREETING = "Hi! How can I help you today?"
AGENT_STOP_TOKEN = "###STOP###"
USER_STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
INVALID_TOOL_CALL = "invalid_tool_call"
"""The name given to a tool call the runtime synthesised for unparsable policy output."""


class Termination(enum.StrEnum):
    """Why an episode ended (tau2's TerminationReason values)."""

    USER_STOP = "user_stop"
    AGENT_STOP = "agent_stop"
    MAX_STEPS = "max_steps"
    TOO_MANY_ERRORS = "too_many_errors"
    AGENT_ERROR = "agent_error"
    USER_ERROR = "user_error"


class EpisodeConfig(msgspec.Struct, frozen=True, kw_only=True):
    """tau2's orchestrator limits, and whether to record the state hash after every write."""

    max_steps: int = 100
    max_errors: int = 10
    greeting: str = GREETING
    hash_after_writes: bool = True


class EpisodeOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an episode produced: the conversation (system prompt first), why it ended, and its score."""

    episode_id: str
    task_id: str
    messages: list[ChatMessage]
    termination: str
    steps: int
    tool_errors: int
    final_state_hash: str
    reward: RewardBreakdown | None = None


class EpisodeRecorder(Protocol):
    """Where an episode's events go (an event store stream, usually)."""

    async def record(self, event: Event) -> None: ...


class Evaluate(Protocol):
    def __call__(self, task: TaskSpec, messages: Sequence[ChatMessage], termination_reason: str) -> RewardBreakdown:
        """Score an episode (tau2's reward)."""
        ...


class _NullRecorder:
    async def record(self, event: Event) -> None:
        return None


def is_user_stop(content: str) -> bool:
    return any(token in content for token in USER_STOP_TOKENS)


def evaluation_view(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The conversation as an evaluator sees it: without calls the runtime synthesised for unparsable output."""
    invalid_ids = {c.id for m in messages for c in m.tool_calls if c.name == INVALID_TOOL_CALL}
    view: list[ChatMessage] = []
    for message in messages:
        if message.role == "tool" and message.tool_call_id in invalid_ids:
            continue
        if any(c.id in invalid_ids for c in message.tool_calls):
            kept = tuple(c for c in message.tool_calls if c.id not in invalid_ids)
            message = msgspec.structs.replace(message, tool_calls=kept)
            if not kept and not message.content:
                continue
        view.append(message)
    return view


class EpisodeRunner:
    """Runs one episode of a task and records every step."""

    def __init__(
        self,
        *,
        domain: Domain,
        config: EpisodeConfig | None = None,
        evaluate: Evaluate | None = None,
        system_prompt: Callable[[Domain], str] | None = None,
    ) -> None:
        self.domain = domain
        self.config = config or EpisodeConfig()
        self.evaluate = evaluate
        self._system_prompt = (system_prompt or (lambda d: d.policy()))(domain)

    async def run(
        self,
        *,
        task: TaskSpec,
        policy: Policy,
        user: UserSimulator,
        episode_id: str,
        seed: int,
        policy_version: int = 0,
        recorder: EpisodeRecorder | None = None,
        policy_name: str = "",
        user_name: str = "",
        group_id: str | None = None,
        purpose: Purpose = "train",
    ) -> EpisodeOutcome:
        """Play the task to the end; returns the outcome (also recorded as `EpisodeFinished`)."""
        sink = recorder or _NullRecorder()
        config = self.config
        env = self.domain.new_environment()
        tools = self.domain.tool_schemas()
        await sink.record(
            EpisodeStarted(
                episode_id=episode_id,
                task_id=task.id,
                domain=self.domain.name,
                policy_version=policy_version,
                seed=seed,
                policy=policy_name,
                user=user_name,
                group_id=group_id,
                max_steps=config.max_steps,
                purpose=purpose,
            )
        )
        messages = [ChatMessage(role="system", content=self._system_prompt)]
        turn = 0
        steps = 0
        errors = 0
        termination: Termination | None = None

        greeting = ChatMessage(role="assistant", content=config.greeting)
        messages.append(greeting)
        await sink.record(AssistantMessage(episode_id=episode_id, turn=turn, content=config.greeting))

        while termination is None:
            # --- the user speaks
            turn += 1
            try:
                user_message = await user.respond(messages)
            except SentinelError as exc:
                _log.warning("user simulator failed", episode_id=episode_id, error=str(exc))
                await sink.record(FaultRecorded(component="user", message=str(exc), episode_id=episode_id))
                termination = Termination.USER_ERROR
                break
            messages.append(ChatMessage(role="user", content=user_message.content))
            await sink.record(UserMessage(episode_id=episode_id, turn=turn, content=user_message.content))
            steps += 1
            if is_user_stop(user_message.content):
                termination = Termination.USER_STOP
                break
            termination = self._limit_reached(steps, errors)

            # --- the agent acts until it speaks to the user
            while termination is None:
                turn += 1
                try:
                    policy_turn = await policy.act(messages, tools)
                except SentinelError as exc:
                    _log.warning("policy failed", episode_id=episode_id, error=str(exc))
                    await sink.record(FaultRecorded(component="policy", message=str(exc), episode_id=episode_id))
                    termination = Termination.AGENT_ERROR
                    break
                assistant = _assistant_message(policy_turn, turn)
                messages.append(assistant)
                await sink.record(_assistant_event(episode_id, turn, policy_turn, assistant))
                steps += 1
                if AGENT_STOP_TOKEN in assistant.content:
                    termination = Termination.AGENT_STOP
                    break
                if not assistant.tool_calls:
                    termination = self._limit_reached(steps, errors)
                    break
                # --- the environment answers every call
                turn += 1
                for call in assistant.tool_calls:
                    tool_message, result = tool_step(
                        self.domain, env, call, policy_turn.parse_error,
                        episode_id=episode_id, turn=turn, hash_after_writes=config.hash_after_writes,
                    )  # fmt: skip
                    errors += int(result.error)
                    messages.append(tool_message)
                    await sink.record(result)
                steps += 1
                termination = self._limit_reached(steps, errors)
        final_hash = env.state_hash()
        reward = self.evaluate(task, evaluation_view(messages), termination) if self.evaluate else None
        await sink.record(
            EpisodeFinished(
                episode_id=episode_id,
                task_id=task.id,
                termination=termination.value,
                reward=reward.reward if reward else 0.0,
                breakdown=_breakdown(reward),
                turns=turn,
                policy_version=policy_version,
                final_state_hash=final_hash,
                info={"steps": steps, "tool_errors": errors},
                purpose=purpose,
            )
        )
        return EpisodeOutcome(
            episode_id=episode_id,
            task_id=task.id,
            messages=messages,
            termination=termination.value,
            steps=steps,
            tool_errors=errors,
            final_state_hash=final_hash,
            reward=reward,
        )

    def _limit_reached(self, steps: int, errors: int) -> Termination | None:
        if steps >= self.config.max_steps:
            return Termination.MAX_STEPS
        if errors >= self.config.max_errors:
            return Termination.TOO_MANY_ERRORS
        return None


def assistant_step(episode_id: str, index: int, turn: PolicyTurn) -> tuple[ChatMessage, AssistantMessage]:
    """A policy turn as the message the conversation continues with, and its event.

    Unparsable output (`parse_error` and no calls) gets a synthetic `INVALID_TOOL_CALL` for `tool_step` to answer.
    """
    message = _assistant_message(turn, index)
    return message, _assistant_event(episode_id, index, turn, message)


def tool_step(
    domain: Domain,
    env: Environment,
    call: ToolCall,
    parse_error: str | None,
    *,
    episode_id: str,
    turn: int,
    hash_after_writes: bool = True,
) -> tuple[ChatMessage, ToolResult]:
    """Execute one tool call of an assistant turn: the tool message and its event.

    A synthetic `INVALID_TOOL_CALL` is answered with `Error: <parse_error>`; a successful write records the
    state hash after it when `hash_after_writes`.
    """
    if call.name == INVALID_TOOL_CALL:
        content, error = f"Error: {parse_error}", True
    else:
        outcome = env.call(call)
        content, error = outcome.content, outcome.error
    written = hash_after_writes and not error and _is_write(domain, call.name)
    message = ChatMessage(role="tool", content=content, tool_call_id=call.id, name=call.name, error=error)
    result = ToolResult(
        episode_id=episode_id,
        turn=turn,
        call_id=call.id,
        name=call.name,
        content=content,
        error=error,
        state_hash=env.state_hash() if written else None,
    )
    return message, result


def _is_write(domain: Domain, name: str) -> bool:
    is_write: Callable[[str], bool] | None = getattr(domain, "is_write_tool", None)
    return True if is_write is None else is_write(name)


def _assistant_message(turn: PolicyTurn, index: int) -> ChatMessage:
    """The message the conversation continues with; unparsable output gets a synthetic call to answer."""
    message = turn.message
    if turn.parse_error is not None and not message.tool_calls:
        call = ToolCall(id=f"invalid_{index}", name=INVALID_TOOL_CALL, arguments={})
        content = message.content or turn.raw_text or ""
        return ChatMessage(role="assistant", content=content, tool_calls=(call,))
    return ChatMessage(role="assistant", content=message.content, tool_calls=message.tool_calls)


def _assistant_event(episode_id: str, index: int, turn: PolicyTurn, message: ChatMessage) -> AssistantMessage:
    return AssistantMessage(
        episode_id=episode_id,
        turn=index,
        content=message.content,
        tool_calls=list(message.tool_calls),
        tokens=turn.tokens,
        policy_version=turn.policy_version,
        raw_text=turn.raw_text,
        parse_error=turn.parse_error,
        finish_reason=turn.finish_reason,
    )


def _breakdown(reward: RewardBreakdown | None) -> dict[str, float]:
    if reward is None:
        return {}
    parts = {
        "db": reward.db,
        "communicate": reward.communicate,
        "action": reward.action,
        "progress": reward.progress,
    }
    return {name: value for name, value in parts.items() if value is not None}
