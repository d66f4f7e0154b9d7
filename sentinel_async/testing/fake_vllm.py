"""A fake vLLM OpenAI-compatible server on aiohttp (loopback, ephemeral port) with scripted replies and faults.

It speaks vLLM's JSON shapes (`vllm/entrypoints/openai/*/protocol.py`): `GET /v1/models`,
`POST /v1/chat/completions` (tools, `tool_calls`, usage), `POST /v1/completions` (token-id prompts, logprobs with
`token_id:<id>` tokens, `token_ids`/`prompt_token_ids`), `POST /v1/load_lora_adapter` and
`/v1/unload_lora_adapter`; errors use vLLM's `{"error": {"message", "type", "param", "code"}}` envelope.

    async with FakeVLLM(chat=[FakeChatReply(content="Hi")]) as server:
        config = ClientConfig(base_url=server.base_url, model=server.model)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self

import msgspec
from aiohttp import web

from sentinel_async.testing.vllm_bodies import chat_completion_body, completion_body, model_card


class FakeToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call in a scripted chat reply; `arguments` is sent verbatim (it may be malformed JSON)."""

    name: str
    arguments: str = "{}"


class FakeChatReply(msgspec.Struct, frozen=True, kw_only=True):
    """A scripted assistant message; `finish_reason` defaults to `tool_calls` or `stop`."""

    content: str | None = None
    tool_calls: tuple[FakeToolCall, ...] = ()
    reasoning_content: str | None = None
    finish_reason: str | None = None


class FakeCompletion(msgspec.Struct, frozen=True, kw_only=True):
    """A scripted completion: generated ids and their log-probs (default -1.0 each)."""

    token_ids: list[int]
    logprobs: list[float] | None = None
    finish_reason: str = "stop"
    text: str | None = None
    prompt_logprobs: list[float] | None = None
    """Each prompt token's log-prob after the first, sent when a request asks for `prompt_logprobs` (-0.5 each
    by default)."""


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """A fault for the next `times` generation requests (to `path` if given, e.g. `/v1/completions`).

    `status`: answer HTTP `status` with vLLM's error body; `delay`: wait `delay_s` then answer normally;
    `invalid_json`: 200 with a truncated body; `drop_field`: 200 without `field` (dotted, e.g. `choices.0.text`).
    """

    kind: Literal["status", "delay", "invalid_json", "drop_field"]
    times: int = 1
    status: int = 503
    delay_s: float = 0.0
    field: str = "choices"
    path: str | None = None


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request the server received (its JSON body decoded, or None)."""

    method: str
    path: str
    body: Any


ChatResponder = Callable[[dict[str, Any]], FakeChatReply | Awaitable[FakeChatReply]]
CompletionResponder = Callable[[list[int], dict[str, Any]], FakeCompletion | Awaitable[FakeCompletion]]
_GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


def vllm_error(status: int, message: str, param: str | None = None) -> web.Response:
    """vLLM's error response: `{"error": {"message", "type", "param", "code"}}` with `code` = HTTP status."""
    phrase = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    err_type = phrase if phrase.endswith("Error") else phrase + "Error"
    body = {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    return web.Response(status=status, body=msgspec.json.encode(body), content_type="application/json")


def _ok(payload: Any) -> web.Response:
    return web.Response(status=200, body=msgspec.json.encode(payload), content_type="application/json")


def _drop(payload: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = payload
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        del node[int(last)]
    else:
        node.pop(last, None)


def _scripted(source: Any) -> Any:
    if source is None or callable(source):
        return source
    queue = deque(source)

    def next_reply(*_: Any) -> Any:
        if not queue:
            raise LookupError("the script of replies is exhausted")
        return queue.popleft()

    return next_reply


class FakeVLLM:
    """The fake server. `chat`/`completion`: a responder callable or a sequence of scripted replies."""

    def __init__(
        self,
        *,
        model: str = "fake/qwen3-tiny",
        chat: ChatResponder | Sequence[FakeChatReply] | None = None,
        completion: CompletionResponder | Sequence[FakeCompletion] | None = None,
        detokenize: Callable[[list[int]], str] | None = None,
        max_model_len: int = 4096,
    ) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.detokenize = detokenize
        self.requests: list[RecordedRequest] = []
        self.lora_adapters: dict[str, str] = {}
        self._chat: Any = _scripted(chat) or (lambda _: FakeChatReply(content="OK"))
        self._completion: Any = _scripted(completion)
        self._faults: list[list[Any]] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, the OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults apply in the order injected."""
        self._faults.append([fault, fault.times])

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies received on `path` (e.g. `/v1/chat/completions`), in order."""
        return [r.body for r in self.requests if r.path == path]

    async def start(self) -> None:
        """Listen on 127.0.0.1 on an ephemeral port."""
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/load_lora_adapter", self._load_lora)
        app.router.add_post("/v1/unload_lora_adapter", self._unload_lora)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening; pending delayed replies are released."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- request plumbing --------------------------------------------------------------------------------
    async def _read(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        self.requests.append(RecordedRequest(method=request.method, path=request.path, body=body))
        return body

    def _take_fault(self, path: str) -> Fault | None:
        for entry in self._faults:
            fault, left = entry
            if left > 0 and (fault.path is None or fault.path == path):
                entry[1] -= 1
                return fault  # type: ignore[no-any-return]
        return None

    async def _generation(
        self, request: web.Request, build: Callable[[dict[str, Any]], Awaitable[web.Response | dict[str, Any]]]
    ) -> web.Response:
        body = await self._read(request)
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "status":
            return vllm_error(fault.status, f"FakeVLLM injected HTTP {fault.status}")
        if fault is not None and fault.kind == "delay":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=fault.delay_s)
        if not isinstance(body, dict):
            return vllm_error(400, "the request body is not a JSON object")
        model = body.get("model")
        if model is not None and model != self.model and model not in self.lora_adapters:
            return vllm_error(404, f"The model `{model}` does not exist.", param="model")
        try:
            built = await build(body)
        except LookupError as e:
            return vllm_error(500, f"FakeVLLM: {e}")
        if isinstance(built, web.Response):
            return built
        if fault is not None and fault.kind == "invalid_json":
            return web.Response(status=200, body=msgspec.json.encode(built)[:40], content_type="application/json")
        if fault is not None and fault.kind == "drop_field":
            _drop(built, fault.field)
        return _ok(built)

    async def _call(self, responder: Any, *args: Any) -> Any:
        result = responder(*args)
        return await result if inspect.isawaitable(result) else result

    # -- endpoints --------------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        await self._read(request)
        data = [model_card(self.model, self.model, None, self.max_model_len)]
        data += [model_card(name, path, self.model, None) for name, path in self.lora_adapters.items()]
        return _ok({"object": "list", "data": data})

    async def _chat_completions(self, request: web.Request) -> web.Response:
        async def build(body: dict[str, Any]) -> dict[str, Any] | web.Response:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return vllm_error(400, "`messages` must be a non-empty list", param="messages")
            reply: FakeChatReply = await self._call(self._chat, body)
            calls = [(c.name, c.arguments) for c in reply.tool_calls]
            model = body.get("model") or self.model
            return chat_completion_body(
                model, messages, reply.content, calls, reply.reasoning_content, reply.finish_reason
            )

        return await self._generation(request, build)

    async def _completions(self, request: web.Request) -> web.Response:
        async def build(body: dict[str, Any]) -> dict[str, Any] | web.Response:
            prompt = body.get("prompt")
            if not isinstance(prompt, list) or not prompt or not all(isinstance(i, int) for i in prompt):
                return vllm_error(400, "FakeVLLM accepts only a non-empty token-id list as `prompt`", param="prompt")
            if self._completion is None:
                return vllm_error(500, "FakeVLLM: no completion responder configured")
            reply: FakeCompletion = await self._call(self._completion, list(prompt), body)
            ids = list(reply.token_ids)
            lps = list(reply.logprobs) if reply.logprobs is not None else [-1.0] * len(ids)
            finish = reply.finish_reason
            max_tokens = body.get("max_tokens")
            if isinstance(max_tokens, int) and len(ids) > max_tokens:
                ids, lps, finish = ids[:max_tokens], lps[:max_tokens], "length"
            model = body.get("model") or self.model
            return completion_body(
                model, body, prompt, ids, lps, finish, reply.text, self.detokenize, reply.prompt_logprobs
            )

        return await self._generation(request, build)

    async def _load_lora(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        body = body if isinstance(body, dict) else {}
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return vllm_error(400, "Both 'lora_name' and 'lora_path' must be provided.")
        if name in self.lora_adapters and not body.get("load_inplace"):
            return vllm_error(
                400,
                f"The lora adapter '{name}' has already been loaded. If you want to load "
                "the adapter in place, set 'load_inplace' to True.",
            )
        self.lora_adapters[str(name)] = str(path)
        return web.Response(status=200, text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        name = body.get("lora_name") if isinstance(body, dict) else None
        if not name:
            return vllm_error(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
        if name not in self.lora_adapters:
            return vllm_error(404, f"The lora adapter '{name}' cannot be found.")
        del self.lora_adapters[name]
        return web.Response(status=200, text=f"Success: LoRA adapter '{name}' removed successfully.")
