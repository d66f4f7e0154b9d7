"""examples/chat_server.py over real HTTP: a fake vLLM, the retail tools, the SQLite log, and the error paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from examples import chat_server
from sentinel_async.agents.clients import ChatPolicy, ClientConfig
from sentinel_async.agents.recording import rebuild_episode
from sentinel_async.events import EpisodeFinished, FaultRecorded
from sentinel_async.messages import ChatMessage
from sentinel_async.store import SQLiteEventStore
from sentinel_async.testing.fake_vllm import FakeChatReply, FakeToolCall, FakeVLLM, Fault
from sentinel_async.tools.retail import RetailDomain

DOMAIN = RetailDomain()
USER = next(iter(DOMAIN.users.values()))


def retail_agent(body: dict[str, Any]) -> FakeChatReply:
    """Looks the customer up by email, then tells them what the tool returned."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return FakeChatReply(content=f"Thanks! Your user id is {last['content']}.")
    return FakeChatReply(
        tool_calls=(FakeToolCall(name="find_user_id_by_email", arguments=f'{{"email": "{USER.email}"}}'),)
    )


@pytest.fixture
async def model() -> AsyncIterator[FakeVLLM]:
    async with FakeVLLM(model="Qwen/Qwen3-4B", chat=retail_agent) as server:
        yield server


async def start(app: web.Application) -> TestClient[web.Request, web.Application]:
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def test_a_conversation_over_http_runs_the_retail_tools_and_is_logged(model: FakeVLLM, tmp_path: Path) -> None:
    log = tmp_path / "chat.sqlite"
    args = chat_server.parse_args(["--model-url", model.base_url, "--model", model.model, "--log", str(log)])
    client = await start(chat_server.app_from_args(args))
    try:
        created = await client.post("/sessions")
        assert created.status == 201
        session_id = (await created.json())["session_id"]

        answer = await client.post(f"/sessions/{session_id}/messages", json={"content": f"Hi, I'm {USER.email}"})
        assert answer.status == 200
        body = await answer.json()
        assert body["reply"] == f"Thanks! Your user id is {USER.user_id}."
        assert body["ended"] is False
        assert [(c["name"], c["arguments"], c["content"], c["error"]) for c in body["tool_calls"]] == [
            ("find_user_id_by_email", {"email": USER.email}, USER.user_id, False)
        ]
        sent = model.bodies("/v1/chat/completions")[0]
        assert sent["messages"][0] == {"role": "system", "content": DOMAIN.policy()}
        assert len(sent["tools"]) == len(DOMAIN.tool_names())

        shown = await client.get(f"/sessions/{session_id}")
        transcript = msgspec.convert((await shown.json())["messages"], list[ChatMessage])
        assert [m.role for m in transcript] == ["assistant", "user", "assistant", "tool", "assistant"]
        assert transcript[3].content == USER.user_id

        second = (await (await client.post("/sessions")).json())["session_id"]  # left open: closed on shutdown
        deleted = await client.delete(f"/sessions/{session_id}")
        assert (deleted.status, (await deleted.json())["termination"]) == (200, "user_stop")
        assert (await client.get(f"/sessions/{session_id}")).status == 404
    finally:
        await client.close()

    with SQLiteEventStore(log, read_only=True) as store:
        rebuilt = rebuild_episode(store, session_id)
        assert rebuilt.messages == transcript
        assert rebuilt.started.task_id == "interactive"
        assert rebuilt.started.policy == model.model
        assert rebuilt.finished is not None
        assert rebuilt.finished.termination == "user_stop"
        left_open = rebuild_episode(store, second)
        assert isinstance(left_open.events[-1].payload, EpisodeFinished)


async def test_unknown_sessions_and_bad_bodies_get_json_errors(model: FakeVLLM) -> None:
    policy = ChatPolicy(ClientConfig(base_url=model.base_url, model=model.model))
    client = await start(chat_server.make_app(policy=policy, domain=DOMAIN))
    try:
        for response in (
            await client.get("/sessions/nope"),
            await client.delete("/sessions/nope"),
            await client.post("/sessions/nope/messages", json={"content": "hi"}),
        ):
            assert response.status == 404
            assert "no session 'nope'" in (await response.json())["error"]
        missing_route = await client.get("/nowhere")
        assert missing_route.status == 404
        assert "Not Found" in (await missing_route.json())["error"]

        session_id = (await (await client.post("/sessions")).json())["session_id"]
        url = f"/sessions/{session_id}/messages"
        for bad in (b"not json", b'{"content": 5}', b"{}", b'{"content": "hi", "extra": 1}', b'{"content": "  "}'):
            response = await client.post(url, data=bad, headers={"Content-Type": "application/json"})
            assert response.status == 400, bad
            assert response.content_type == "application/json"
            assert (await response.json())["error"]
        assert model.bodies("/v1/chat/completions") == []
    finally:
        await client.close()
        await policy.aclose()


async def test_a_failing_model_server_gives_502_with_the_reason_and_a_logged_fault(
    model: FakeVLLM, tmp_path: Path
) -> None:
    config = ClientConfig(base_url=model.base_url, model=model.model, max_retries=1, backoff_base_s=0.01,
                          backoff_cap_s=0.01)  # fmt: skip
    policy = ChatPolicy(config)
    with SQLiteEventStore(tmp_path / "chat.sqlite") as store:
        client = await start(chat_server.make_app(policy=policy, domain=DOMAIN, store=store))
        try:
            session_id = (await (await client.post("/sessions")).json())["session_id"]
            model.inject(Fault(kind="status", status=500, times=2))
            failed = await client.post(f"/sessions/{session_id}/messages", json={"content": "Hello?"})
            assert failed.status == 502
            error = (await failed.json())["error"]
            assert "failed 2 time(s)" in error
            assert "HTTP 500" in error

            recovered = await client.post(f"/sessions/{session_id}/messages", json={"content": f"I'm {USER.email}"})
            assert recovered.status == 200
            assert USER.user_id in (await recovered.json())["reply"]
        finally:
            await client.close()
            await policy.aclose()
        faults = [e.payload for e in store.read() if isinstance(e.payload, FaultRecorded)]
        assert [(f.component, f.episode_id) for f in faults] == [("policy", session_id)]
        assert "HTTP 500" in faults[0].message
