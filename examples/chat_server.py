"""A chat server for the retail tool agent: an aiohttp app around `AgentSession`, every session logged.

Run it against any OpenAI-compatible server (e.g. `vllm serve Qwen/Qwen3-4B --enable-auto-tool-choice
--tool-call-parser hermes`):

    python examples/chat_server.py --model-url http://127.0.0.1:8000/v1 --model Qwen/Qwen3-4B \
        --log chat.sqlite --host 127.0.0.1 --port 8080

Then:

    curl -X POST localhost:8080/sessions                                  # {"session_id": "..."}
    curl -X POST localhost:8080/sessions/ID/messages -d '{"content": "Hi, my email is ..."}'
    curl localhost:8080/sessions/ID                                       # the transcript
    curl -X DELETE localhost:8080/sessions/ID                             # end it (logged)

Replies are `{"reply", "tool_calls": [{"id", "name", "arguments", "content", "error"}], "ended", "stop_reason"}`.
Errors are `{"error": "<message>"}`: 400 bad body, 404 unknown session, 409 session over, 502 model server down.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from sentinel_async.agents.clients import ChatPolicy, ClientConfig
from sentinel_async.agents.protocols import Policy
from sentinel_async.agents.recording import StreamRecorder
from sentinel_async.agents.session import AgentSession, AgentUnavailableError, SessionClosedError, SessionConfig
from sentinel_async.store import EventStore, SQLiteEventStore
from sentinel_async.tools.base import Domain
from sentinel_async.tools.retail import RetailDomain


class MessageBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /sessions/{id}/messages`."""

    content: str


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and wrong methods answer JSON too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, f"{exc.reason}: {request.method} {request.path}")


class ChatService:
    """The sessions of one app and the HTTP handlers over them."""

    def __init__(
        self, policy: Policy, domain: Domain, store: EventStore | None, config: SessionConfig, policy_name: str
    ) -> None:
        self.policy = policy
        self.domain = domain
        self.store = store
        self.config = config
        self.policy_name = policy_name
        self.sessions: dict[str, AgentSession] = {}

    def _session(self, request: web.Request) -> AgentSession | web.Response:
        session_id = request.match_info["session_id"]
        session = self.sessions.get(session_id)
        return session if session is not None else _error(404, f"no session {session_id!r}: create one first")

    async def create(self, request: web.Request) -> web.Response:
        session_id = uuid.uuid4().hex
        recorder = StreamRecorder(self.store, session_id) if self.store is not None else None
        session = AgentSession(
            domain=self.domain, policy=self.policy, recorder=recorder, config=self.config,
            session_id=session_id, policy_name=self.policy_name,
        )  # fmt: skip
        await session.start()
        self.sessions[session_id] = session
        return _json({"session_id": session_id}, 201)

    async def message(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        try:
            body = msgspec.json.decode(await request.read(), type=MessageBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, f'the body must be a JSON object {{"content": "<text>"}}: {exc}')
        if not body.content.strip():
            return _error(400, "`content` is empty")
        try:
            reply = await session.send(body.content)
        except SessionClosedError as exc:
            return _error(409, str(exc))
        except AgentUnavailableError as exc:
            return _error(502, str(exc))
        return _json(
            {
                "reply": reply.content,
                "tool_calls": reply.tool_calls,
                "ended": reply.ended,
                "stop_reason": reply.stop_reason,
            }
        )

    async def transcript(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        return _json(
            {
                "session_id": session.session_id,
                "ended": session.closed,
                "termination": session.termination,
                "messages": session.transcript,
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        await session.close()
        del self.sessions[session.session_id]
        return _json({"session_id": session.session_id, "termination": session.termination})

    async def close_all(self, app: web.Application) -> None:
        """Close every open session (each logs its `EpisodeFinished`)."""
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()


def make_app(
    *,
    policy: Policy,
    domain: Domain,
    store: EventStore | None = None,
    config: SessionConfig | None = None,
    policy_name: str = "",
) -> web.Application:
    """The chat app: sessions of `policy` on `domain`, each recorded in `store` (its stream `episode-<id>`).

    The caller owns `policy` and `store`; sessions still open are closed when the app shuts down.
    """
    service = ChatService(policy, domain, store, config or SessionConfig(), policy_name)
    app = web.Application(middlewares=[json_errors])
    app.router.add_post("/sessions", service.create)
    app.router.add_post("/sessions/{session_id}/messages", service.message)
    app.router.add_get("/sessions/{session_id}", service.transcript)
    app.router.add_delete("/sessions/{session_id}", service.delete)
    app.on_shutdown.append(service.close_all)
    return app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the retail tool agent over HTTP.")
    parser.add_argument("--model-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", required=True, help="the served model name, e.g. Qwen/Qwen3-4B")
    parser.add_argument("--log", default="chat.sqlite", help="SQLite event log every session is recorded in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default=None, help="bearer token for the model server, if it needs one")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-retries", type=int, default=3, help="retries of a failing model request")
    parser.add_argument("--max-tool-calls", type=int, default=20, help="tool calls allowed per user message")
    return parser.parse_args(argv)


def app_from_args(args: argparse.Namespace) -> web.Application:
    """The app for parsed CLI flags, on the retail domain; it closes its model client and log on cleanup."""
    config = ClientConfig(
        base_url=args.model_url, model=args.model, api_key=args.api_key,
        temperature=args.temperature, max_retries=args.max_retries,
    )  # fmt: skip
    policy = ChatPolicy(config)
    store = SQLiteEventStore(args.log)
    app = make_app(
        policy=policy, domain=RetailDomain(), store=store, policy_name=args.model,
        config=SessionConfig(max_tool_calls=args.max_tool_calls),
    )  # fmt: skip

    async def close(_: web.Application) -> None:
        await policy.aclose()
        store.close()

    app.on_cleanup.append(close)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    web.run_app(app_from_args(args), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
