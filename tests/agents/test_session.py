"""AgentSession on the tiny library domain: turns, tool errors, limits, faults, the log, and concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sentinel_async.agents.clients import ModelServerUnavailableError
from sentinel_async.agents.episode import INVALID_TOOL_CALL
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.recording import StreamRecorder, rebuild_episode, verify_replay
from sentinel_async.agents.session import (
    AgentSession,
    AgentUnavailableError,
    SessionClosedError,
    SessionConfig,
    TurnEnd,
)
from sentinel_async.errors import SentinelError
from sentinel_async.events import EpisodeFinished, EpisodeStarted, FaultRecorded
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.store import MemoryEventStore
from sentinel_async.tools.tiny import LibraryDomain

DOMAIN = LibraryDomain()


def call(name: str, **arguments: str) -> PolicyTurn:
    tool_call = ToolCall(id=f"call_{name}_{len(arguments)}", name=name, arguments=arguments)
    return PolicyTurn(message=ChatMessage(role="assistant", tool_calls=(tool_call,)))


def say(text: str) -> PolicyTurn:
    return PolicyTurn(message=ChatMessage(role="assistant", content=text))


MALFORMED = PolicyTurn(
    message=ChatMessage(role="assistant"), raw_text="<tool_call>{oops</tool_call>", parse_error="invalid JSON"
)


class ScriptedPolicy:
    """Plays a script of turns (an exception in it is raised); repeats `then` once the script is spent."""

    def __init__(self, script: Sequence[PolicyTurn | Exception], then: PolicyTurn | None = None) -> None:
        self.script = list(script)
        self.then = then
        self.seen: list[list[ChatMessage]] = []

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        self.seen.append(list(conversation))
        step = self.script.pop(0) if self.script else self.then
        if isinstance(step, Exception):
            raise step
        assert step is not None, "the script is exhausted"
        return step


def session(policy: Any, store: MemoryEventStore | None = None, sid: str = "s1", **config: Any) -> AgentSession:
    recorder = StreamRecorder(store, sid) if store is not None else None
    return AgentSession(domain=DOMAIN, policy=policy, recorder=recorder, session_id=sid, config=SessionConfig(**config))


async def test_a_turn_runs_tools_until_the_agent_speaks_and_the_log_rebuilds_it() -> None:
    store = MemoryEventStore()
    policy = ScriptedPolicy([call("find_member_by_email", email="ada@example.com"), say("You are member ada.")])
    chat = session(policy, store)
    reply = await chat.send("Hi, I'm ada@example.com")
    assert reply.content == "You are member ada."
    assert [(t.name, t.content, t.error) for t in reply.tool_calls] == [("find_member_by_email", "ada", False)]
    assert (reply.ended, reply.stop_reason) == (False, TurnEnd.REPLY)
    assert policy.seen[0][0] == ChatMessage(role="system", content=DOMAIN.policy())
    assert [m.role for m in chat.transcript] == ["assistant", "user", "assistant", "tool", "assistant"]

    await chat.close()
    await chat.close()  # idempotent
    rebuilt = rebuild_episode(store, "s1", system_prompt=DOMAIN.policy())
    assert rebuilt.messages == chat.messages
    assert rebuild_episode(store, "s1").messages == chat.transcript
    assert isinstance(rebuilt.started, EpisodeStarted)
    assert rebuilt.started.task_id == "interactive"
    assert rebuilt.finished is not None
    assert rebuilt.finished.termination == "user_stop"
    assert rebuilt.finished.final_state_hash == chat.state_hash()
    assert verify_replay(store, "s1", DOMAIN) == []
    with pytest.raises(SessionClosedError, match="is over"):
        await chat.send("hello?")


async def test_malformed_output_is_answered_as_a_tool_error_then_too_many_errors_end_the_session() -> None:
    store = MemoryEventStore()
    chat = session(ScriptedPolicy([MALFORMED, say("Sorry, which book?")], then=MALFORMED), store, max_errors=3)
    reply = await chat.send("Is Dune available?")
    assert reply.content == "Sorry, which book?"
    assert [(t.name, t.content, t.error) for t in reply.tool_calls] == [
        (INVALID_TOOL_CALL, "Error: invalid JSON", True)
    ]

    reply = await chat.send("Dune, b1")
    assert (reply.ended, reply.stop_reason) == (True, TurnEnd.TOO_MANY_ERRORS)
    assert len(reply.tool_calls) == 2
    assert chat.closed
    assert chat.termination == "too_many_errors"
    finished = [e.payload for e in store.read() if isinstance(e.payload, EpisodeFinished)]
    assert [(f.termination, f.info["tool_errors"]) for f in finished] == [("too_many_errors", 3)]
    with pytest.raises(SessionClosedError):
        await chat.send("hello?")


async def test_the_tool_limit_cuts_a_turn_short_but_the_session_goes_on() -> None:
    chat = session(ScriptedPolicy([], then=call("get_book", book_id="b1")), max_tool_calls=3)
    reply = await chat.send("Tell me about Dune")
    assert (reply.content, reply.ended, reply.stop_reason) == ("", False, TurnEnd.TOOL_LIMIT)
    assert len(reply.tool_calls) == 3
    assert not chat.closed
    chat.policy = ScriptedPolicy([say("Dune is available.")])
    assert (await chat.send("So?")).content == "Dune is available."


async def test_the_agent_ends_the_conversation_with_the_stop_token() -> None:
    store = MemoryEventStore()
    chat = session(ScriptedPolicy([say("Goodbye! ###STOP###")]), store)
    reply = await chat.send("That's all, thanks")
    assert (reply.content, reply.ended, reply.stop_reason) == ("Goodbye!", True, TurnEnd.AGENT_STOP)
    assert chat.transcript[-1].content == "Goodbye! ###STOP###"
    assert chat.termination == "agent_stop"
    await chat.close()
    assert [type(e.payload).__name__ for e in store.read()].count("EpisodeFinished") == 1


async def test_a_dead_model_server_raises_a_clear_error_records_a_fault_and_keeps_the_session() -> None:
    store = MemoryEventStore()
    dead = ModelServerUnavailableError("http://127.0.0.1:9/v1/chat/completions", 3, "ClientConnectorError")
    chat = session(ScriptedPolicy([dead, say("Back again.")]), store)
    with pytest.raises(AgentUnavailableError, match=r"the agent's model failed: .*127\.0\.0\.1:9") as caught:
        await chat.send("Hello")
    assert isinstance(caught.value, SentinelError)
    assert caught.value.__cause__ is dead
    faults = [e.payload for e in store.read() if isinstance(e.payload, FaultRecorded)]
    assert [(f.component, f.episode_id) for f in faults] == [("policy", "s1")]
    assert not chat.closed
    assert (await chat.send("Hello again")).content == "Back again."


async def test_sessions_have_their_own_environments() -> None:
    borrow = call("borrow_book", member_id="ada", book_id="b1")
    first = session(ScriptedPolicy([borrow, say("Done.")]), sid="a")
    second = session(ScriptedPolicy([borrow, say("Done.")]), sid="b")
    assert not (await first.send("Lend me Dune")).tool_calls[0].error
    assert not (await second.send("Lend me Dune")).tool_calls[0].error
    assert first.state_hash() == second.state_hash() != DOMAIN.base_hash()


class GatedPolicy:
    """Answers once `needed` calls are in flight at the same time (across the sessions sharing it)."""

    def __init__(self, needed: int) -> None:
        self.needed = needed
        self.in_flight = 0
        self.peak = 0
        self.all_in = asyncio.Event()

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.needed:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), timeout=0.2)
        except TimeoutError:
            pass
        finally:
            self.in_flight -= 1
        return say(f"re: {conversation[-1].content}")


async def test_many_sessions_run_concurrently() -> None:
    policy = GatedPolicy(needed=5)
    chats = [session(policy, sid=f"s{i}") for i in range(5)]
    replies = await asyncio.wait_for(asyncio.gather(*(c.send(f"hi {i}") for i, c in enumerate(chats))), timeout=5)
    assert policy.peak == 5
    assert [r.content for r in replies] == [f"re: hi {i}" for i in range(5)]


async def test_one_session_handles_one_message_at_a_time() -> None:
    policy = GatedPolicy(needed=2)
    chat = session(policy)
    replies = await asyncio.gather(chat.send("first"), chat.send("second"))
    assert policy.peak == 1, "the second message waited for the first"
    assert [r.content for r in replies] == ["re: first", "re: second"]
    assert [m.content for m in chat.transcript if m.role == "user"] == ["first", "second"]
