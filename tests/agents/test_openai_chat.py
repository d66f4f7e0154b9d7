"""ChatPolicy / ChatUser against the fake vLLM server on loopback: tool calls, roles, retries, errors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from sentinel_async.agents.clients import (
    ChatPolicy,
    ChatUser,
    ClientConfig,
    MalformedResponseError,
    ModelServerRequestError,
    ModelServerTimeoutError,
    ModelServerUnavailableError,
    is_stop_message,
    load_user_guidelines,
)
from sentinel_async.agents.clients.openai_chat import user_view
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.testing import FakeChatReply, FakeToolCall, FakeVLLM, Fault

MakeConfig = Callable[..., ClientConfig]
CHAT = "/v1/chat/completions"


def agent_script(body: dict[str, Any]) -> FakeChatReply:
    """Look the order up after a user message; summarise after a tool result."""
    last = body["messages"][-1]
    if last["role"] == "user":
        return FakeChatReply(tool_calls=(FakeToolCall(name="get_order_details", arguments='{"order_id": "#W1"}'),))
    return FakeChatReply(content=f"Your order is {json.loads(last['content'])['status']}.")


async def test_multi_turn_tool_calls(make_config: MakeConfig, order_tools: list[dict[str, Any]]) -> None:
    async with (
        FakeVLLM(chat=agent_script) as server,
        ChatPolicy(make_config(server.base_url, server.model), policy_version=3) as policy,
    ):
        convo = [
            ChatMessage(role="system", content="You are a retail agent."),
            ChatMessage(role="user", content="Where is order #W1?"),
        ]
        turn = await policy.act(convo, order_tools)
        assert turn.parse_error is None
        assert turn.finish_reason == "tool_calls"
        assert turn.policy_version == 3
        (call,) = turn.message.tool_calls
        assert (call.name, call.arguments) == ("get_order_details", {"order_id": "#W1"})
        assert call.id.startswith("chatcmpl-tool-")
        convo += [turn.message, ChatMessage(role="tool", content='{"status": "pending"}', tool_call_id=call.id)]
        turn2 = await policy.act(convo, order_tools)
        assert turn2.message == ChatMessage(role="assistant", content="Your order is pending.")
        assert turn2.finish_reason == "stop"

    first, second = server.bodies(CHAT)
    assert first["model"] == server.model
    assert first["tools"] == order_tools
    assert first["tool_choice"] == "auto"
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    sent_call = second["messages"][2]["tool_calls"][0]
    assert sent_call == {
        "id": call.id,
        "type": "function",
        "function": {"name": "get_order_details", "arguments": '{"order_id": "#W1"}'},
    }
    assert second["messages"][3] == {"role": "tool", "content": '{"status": "pending"}', "tool_call_id": call.id}


async def test_bad_tool_call_json_is_a_parse_error(make_config: MakeConfig, order_tools: list[dict[str, Any]]) -> None:
    broken = FakeChatReply(tool_calls=(FakeToolCall(name="get_order_details", arguments='{"order_id": "#W1"'),))
    async with FakeVLLM(chat=[broken]) as server, ChatPolicy(make_config(server.base_url, server.model)) as policy:
        turn = await policy.act([ChatMessage(role="user", content="hi")], order_tools)
    assert turn.parse_error is not None
    assert "not valid JSON" in turn.parse_error
    assert turn.message.tool_calls == ()
    assert turn.raw_text is not None
    assert "get_order_details" in turn.raw_text
    assert json.dumps('{"order_id": "#W1"') in turn.raw_text  # the broken arguments, verbatim


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (FakeToolCall(name="refund_everything", arguments="{}"), "unknown tool 'refund_everything'"),
        (FakeToolCall(name="cancel_pending_order", arguments='{"order_id": "#W1"}'), "missing required"),
        (FakeToolCall(name="get_order_details", arguments='["#W1"]'), "must be a JSON object"),
    ],
)
async def test_invalid_tool_calls_are_parse_errors(
    make_config: MakeConfig, order_tools: list[dict[str, Any]], call: FakeToolCall, expected: str
) -> None:
    async with (
        FakeVLLM(chat=[FakeChatReply(tool_calls=(call,))]) as server,
        ChatPolicy(make_config(server.base_url, server.model)) as policy,
    ):
        turn = await policy.act([ChatMessage(role="user", content="hi")], order_tools)
    assert turn.parse_error is not None
    assert expected in turn.parse_error
    assert turn.message.tool_calls == ()


async def test_leading_think_is_stripped(make_config: MakeConfig) -> None:
    reply = FakeChatReply(content="<think>the user wants help</think>\n\nHello! How can I help?")
    async with FakeVLLM(chat=[reply]) as server, ChatPolicy(make_config(server.base_url, server.model)) as policy:
        turn = await policy.act([ChatMessage(role="user", content="hi")], [])
    assert turn.message.content == "Hello! How can I help?"
    assert turn.raw_text is not None
    assert turn.raw_text.startswith("<think>")
    assert "tools" not in server.bodies(CHAT)[0]


def test_user_view_flips_roles_and_hides_tools() -> None:
    call = ToolCall(id="c1", name="get_order_details", arguments={"order_id": "#W1"})
    convo = [
        ChatMessage(role="system", content="agent policy"),
        ChatMessage(role="assistant", content="Hi! How can I help you today?"),
        ChatMessage(role="user", content="Where is my order?"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", content='{"status": "pending"}', tool_call_id="c1"),
        ChatMessage(role="assistant", content="It is pending."),
    ]
    assert user_view(convo) == [
        {"role": "user", "content": "Hi! How can I help you today?"},
        {"role": "assistant", "content": "Where is my order?"},
        {"role": "user", "content": "It is pending."},
    ]


async def test_chat_user_sees_flipped_conversation(make_config: MakeConfig) -> None:
    convo = [
        ChatMessage(role="system", content="SECRET agent policy"),
        ChatMessage(role="assistant", content="Hi! How can I help you today?"),
        ChatMessage(role="user", content="I want to cancel #W1."),
        ChatMessage(role="assistant", tool_calls=(ToolCall(id="c1", name="get_order_details"),)),
        ChatMessage(role="tool", content="SECRET tool output", tool_call_id="c1"),
        ChatMessage(role="assistant", content="Done, it is cancelled."),
    ]
    async with (
        FakeVLLM(chat=[FakeChatReply(content="Thanks! ###STOP###")]) as server,
        ChatUser(make_config(server.base_url, server.model), "You are Yusuf; cancel #W1.") as user,
    ):
        reply = await user.respond(convo)
    assert reply == ChatMessage(role="user", content="Thanks! ###STOP###")
    assert is_stop_message(reply)
    (body,) = server.bodies(CHAT)
    messages = body["messages"]
    assert "tools" not in body
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].startswith(load_user_guidelines().strip())
    assert messages[0]["content"].endswith("<scenario>\nYou are Yusuf; cancel #W1.\n</scenario>")
    assert "###STOP###" in messages[0]["content"]
    assert all("SECRET" not in m["content"] for m in messages)


def test_guidelines_come_from_installed_tau2() -> None:
    text = load_user_guidelines()
    assert "###TRANSFER###" in text
    assert "###OUT-OF-SCOPE###" in text
    pytest.importorskip("tau2")
    assert text.startswith("# User Simulation Guidelines")


async def test_5xx_then_success_is_retried(make_config: MakeConfig, sleeper: Any, rng: random.Random) -> None:
    async with FakeVLLM(chat=[FakeChatReply(content="ok")]) as server:
        server.inject(Fault(kind="status", status=503, times=2))
        cfg = make_config(server.base_url, server.model, max_retries=3, backoff_base_s=0.5, backoff_cap_s=0.8)
        async with ChatPolicy(cfg, rng=rng, sleep=sleeper) as policy:
            turn = await policy.act([ChatMessage(role="user", content="hi")], [])
    assert turn.message.content == "ok"
    assert len(server.bodies(CHAT)) == 3
    first, second = sleeper.delays
    assert 0.25 <= first < 0.5
    assert 0.4 <= second < 0.8


async def test_persistent_5xx_gives_clear_error(make_config: MakeConfig, sleeper: Any) -> None:
    async with FakeVLLM() as server:
        server.inject(Fault(kind="status", status=500, times=10))
        async with ChatPolicy(make_config(server.base_url, server.model, max_retries=2), sleep=sleeper) as policy:
            with pytest.raises(ModelServerUnavailableError, match="failed 3 time") as info:
                await policy.act([ChatMessage(role="user", content="hi")], [])
    assert "HTTP 500" in str(info.value)
    assert "FakeVLLM injected" in str(info.value)
    assert len(server.bodies(CHAT)) == 3
    assert len(sleeper.delays) == 2


async def test_timeout_is_retried_then_reported(make_config: MakeConfig, sleeper: Any) -> None:
    async with FakeVLLM(chat=lambda _: FakeChatReply(content="late")) as server:
        cfg = make_config(server.base_url, server.model, timeout_s=0.2, max_retries=1)
        server.inject(Fault(kind="delay", delay_s=0.6, times=1))
        async with ChatPolicy(cfg, sleep=sleeper) as policy:
            turn = await policy.act([ChatMessage(role="user", content="hi")], [])
            assert turn.message.content == "late"
            server.inject(Fault(kind="delay", delay_s=0.6, times=2))
            with pytest.raises(ModelServerTimeoutError, match=r"no response within 0\.2s"):
                await policy.act([ChatMessage(role="user", content="hi")], [])


async def test_connection_refused_is_unavailable(make_config: MakeConfig, sleeper: Any) -> None:
    async with FakeVLLM() as server:
        url = server.base_url
    async with ChatPolicy(make_config(url, "m", max_retries=1), sleep=sleeper) as policy:
        with pytest.raises(ModelServerUnavailableError, match="ClientConnectorError"):
            await policy.act([ChatMessage(role="user", content="hi")], [])


async def test_4xx_is_not_retried_and_carries_server_message(make_config: MakeConfig, sleeper: Any) -> None:
    async with (
        FakeVLLM() as server,
        ChatPolicy(make_config(server.base_url, "no-such-model"), sleep=sleeper) as policy,
    ):
        with pytest.raises(ModelServerRequestError, match="does not exist") as info:
            await policy.act([ChatMessage(role="user", content="hi")], [])
    assert info.value.status == 404
    assert "NotFoundError" in info.value.server_message
    assert len(server.requests) == 1
    assert sleeper.delays == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="invalid_json"), "not valid JSON"),
        (Fault(kind="drop_field", field="choices"), "missing required field `choices`"),
        (Fault(kind="drop_field", field="choices.0.message"), r"\$\.choices\[0\]"),
        (Fault(kind="drop_field", field="choices.0"), "`choices` is empty"),
    ],
)
async def test_malformed_response_is_typed(make_config: MakeConfig, fault: Fault, expected: str) -> None:
    async with FakeVLLM() as server:
        server.inject(fault)
        async with ChatPolicy(make_config(server.base_url, server.model)) as policy:
            with pytest.raises(MalformedResponseError, match=expected):
                await policy.act([ChatMessage(role="user", content="hi")], [])
    assert len(server.requests) == 1
