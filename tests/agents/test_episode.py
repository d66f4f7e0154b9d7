"""The episode runner on the tiny library domain: tau2's rules, events, rebuild and replay, faults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from sentinel_async.agents.episode import INVALID_TOOL_CALL, EpisodeConfig, EpisodeRunner
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.recording import StreamRecorder, rebuild_episode, verify_replay
from sentinel_async.errors import SentinelError
from sentinel_async.events import (
    AssistantMessage,
    EpisodeFinished,
    EpisodeStarted,
    FaultRecorded,
    ToolResult,
    UserMessage,
)
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.store import MemoryEventStore, SQLiteEventStore
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail.evaluation import Evaluator
from sentinel_async.tools.tiny import LibraryDomain

DOMAIN = LibraryDomain()


class GoldPolicy:
    """Calls the task's gold actions one per turn, then tells the user what it found."""

    def __init__(self, task: TaskSpec) -> None:
        self.actions = list(task.gold_actions)
        self.info = task.communicate_info

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        if self.actions:
            action = self.actions.pop(0)
            call = ToolCall(id=f"call_{len(conversation)}", name=action.name, arguments=action.arguments)
            return PolicyTurn(message=ChatMessage(role="assistant", tool_calls=(call,)))
        return PolicyTurn(message=ChatMessage(role="assistant", content="Done. " + " ".join(self.info)))


class OneShotUser:
    """States the request, then stops once the agent says it is done."""

    def __init__(self, task: TaskSpec, stop: str = "###STOP###") -> None:
        self.task = task
        self.stop = stop

    async def respond(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        last = conversation[-1]
        if last.role == "assistant" and last.content.startswith("Done"):
            return ChatMessage(role="user", content=f"Thanks! {self.stop}")
        instructions = self.task.user_scenario.instructions
        reason = instructions if isinstance(instructions, str) else instructions.reason_for_call
        return ChatMessage(role="user", content=reason)


class MalformedPolicy:
    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        raw = '<tool_call>{"name": "get_book", "arguments": {"book_id": </tool_call>'
        return PolicyTurn(
            message=ChatMessage(role="assistant"), raw_text=raw, parse_error="invalid JSON in <tool_call>"
        )


class DeadServerPolicy:
    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        raise SentinelError("model server at http://127.0.0.1:9 is unreachable after 3 retries")


class ChattyPolicy:
    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        return PolicyTurn(message=ChatMessage(role="assistant", content="Could you tell me more?"))


class StoppingPolicy:
    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        return PolicyTurn(message=ChatMessage(role="assistant", content="Goodbye. ###STOP###"))


def runner(**config: Any) -> EpisodeRunner:
    return EpisodeRunner(domain=DOMAIN, config=EpisodeConfig(**config), evaluate=Evaluator(DOMAIN).evaluate)


@pytest.mark.parametrize("task", DOMAIN.tasks(), ids=lambda t: t.id)
async def test_gold_policy_solves_every_tiny_task(task: TaskSpec) -> None:
    outcome = await runner().run(task=task, policy=GoldPolicy(task), user=OneShotUser(task), episode_id="e", seed=0)
    assert outcome.termination == "user_stop"
    assert outcome.reward is not None
    assert outcome.reward.reward == 1.0
    roles = [m.role for m in outcome.messages]
    assert roles[:3] == ["system", "assistant", "user"]
    assert outcome.messages[1].content == "Hi! How can I help you today?"


async def test_every_step_is_an_event_and_the_log_alone_rebuilds_and_replays_it(tmp_path: Any) -> None:
    task = DOMAIN.task("lib_3")
    with SQLiteEventStore(tmp_path / "events.sqlite") as store:
        outcome = await runner().run(
            task=task,
            policy=GoldPolicy(task),
            user=OneShotUser(task),
            episode_id="ep-1",
            seed=5,
            recorder=StreamRecorder(store, "ep-1"),
        )
        events = store.read_stream("episode-ep-1")
        kinds = [type(e.payload).__name__ for e in events]
        assert kinds[0] == "EpisodeStarted"
        assert kinds[-1] == "EpisodeFinished"
        assert kinds.count("ToolResult") == 4
        assert [e.causation_id for e in events[1:]] == [e.event_id for e in events[:-1]], "each caused by the last"
        assert {e.correlation_id for e in events} == {events[0].event_id}
        writes = [e.payload for e in events if isinstance(e.payload, ToolResult) and e.payload.state_hash]
        assert [w.name for w in writes] == ["return_book", "borrow_book", "borrow_book"]

        rebuilt = rebuild_episode(store, "ep-1", system_prompt=DOMAIN.policy())
        assert rebuilt.messages == outcome.messages
        assert rebuilt.finished is not None
        assert rebuilt.finished.reward == 1.0
        assert rebuilt.finished.final_state_hash == outcome.final_state_hash
        assert verify_replay(store, "ep-1", DOMAIN) == []


async def test_replay_detects_a_log_that_does_not_match_the_environment() -> None:
    task = DOMAIN.task("lib_0")
    store = MemoryEventStore()
    await runner().run(
        task=task, policy=GoldPolicy(task), user=OneShotUser(task), episode_id="ep", seed=0,
        recorder=StreamRecorder(store, "ep"),
    )  # fmt: skip
    # The same events, but the final hash of a different world: replay must notice.
    tampered = MemoryEventStore()
    for record in store.read():
        payload = record.payload
        if isinstance(payload, EpisodeFinished):
            payload = EpisodeFinished(**{**_fields(payload), "final_state_hash": "0" * 64})
        await tampered.append(record.stream_id, [payload])
    mismatches = verify_replay(tampered, "ep", DOMAIN)
    assert [m.what for m in mismatches] == ["final state hash"]


def _fields(payload: EpisodeFinished) -> dict[str, Any]:
    return {f: getattr(payload, f) for f in payload.__struct_fields__}


async def test_malformed_output_is_answered_as_a_tool_error_until_too_many_errors() -> None:
    store = MemoryEventStore()
    task = DOMAIN.task("lib_2")
    outcome = await runner(max_errors=3).run(
        task=task, policy=MalformedPolicy(), user=OneShotUser(task), episode_id="m", seed=0,
        recorder=StreamRecorder(store, "m"),
    )  # fmt: skip
    assert outcome.termination == "too_many_errors"
    assert outcome.tool_errors == 3
    assert outcome.reward is not None
    assert outcome.reward.reward == 0.0
    payloads = [e.payload for e in store.read()]
    assistant = [p for p in payloads if isinstance(p, AssistantMessage) and p.parse_error]
    assert len(assistant) == 3
    assert assistant[0].raw_text is not None
    assert assistant[0].tool_calls[0].name == INVALID_TOOL_CALL
    errors = [p for p in payloads if isinstance(p, ToolResult)]
    assert all(p.error and p.content == "Error: invalid JSON in <tool_call>" for p in errors)
    assert verify_replay(store, "m", DOMAIN) == []


async def test_a_dead_model_server_ends_the_episode_as_agent_error_with_a_fault_event() -> None:
    store = MemoryEventStore()
    task = DOMAIN.task("lib_0")
    outcome = await runner().run(
        task=task, policy=DeadServerPolicy(), user=OneShotUser(task), episode_id="d", seed=0,
        recorder=StreamRecorder(store, "d"),
    )  # fmt: skip
    assert outcome.termination == "agent_error"
    faults = [e.payload for e in store.read() if isinstance(e.payload, FaultRecorded)]
    assert len(faults) == 1
    assert "unreachable" in faults[0].message
    assert faults[0].component == "policy"


async def test_max_steps_and_agent_stop_end_episodes_like_tau2() -> None:
    task = DOMAIN.task("lib_0")
    outcome = await runner(max_steps=6).run(
        task=task, policy=ChattyPolicy(), user=OneShotUser(task), episode_id="c", seed=0
    )
    assert outcome.termination == "max_steps"
    assert outcome.steps == 6
    assert outcome.reward is not None
    assert outcome.reward.reward == 0.0
    stopped = await runner().run(task=task, policy=StoppingPolicy(), user=OneShotUser(task), episode_id="s", seed=0)
    assert stopped.termination == "agent_stop"


@pytest.mark.parametrize("token", ["###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"])
async def test_user_stop_tokens_end_the_episode(token: str) -> None:
    task = DOMAIN.task("lib_2")
    outcome = await runner().run(
        task=task, policy=GoldPolicy(task), user=OneShotUser(task, stop=token), episode_id="u", seed=0
    )
    assert outcome.termination == "user_stop"
    assert token in outcome.messages[-1].content


async def test_an_episode_id_is_recorded_once() -> None:
    store = MemoryEventStore()
    task = DOMAIN.task("lib_0")
    await runner().run(task=task, policy=GoldPolicy(task), user=OneShotUser(task), episode_id="x", seed=0,
                       recorder=StreamRecorder(store, "x"))  # fmt: skip
    with pytest.raises(SentinelError, match="stream 'episode-x' is at version"):
        await runner().run(task=task, policy=GoldPolicy(task), user=OneShotUser(task), episode_id="x", seed=0,
                           recorder=StreamRecorder(store, "x"))  # fmt: skip
    started = [e for e in store.read() if isinstance(e.payload, EpisodeStarted)]
    assert len(started) == 1
    assert all(isinstance(e.payload, EpisodeStarted | AssistantMessage | UserMessage | ToolResult | EpisodeFinished)
               for e in store.read())  # fmt: skip
