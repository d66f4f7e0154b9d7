"""The HTTP layer shared by the clients: config, retries with backoff and jitter, typed decoding."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
import msgspec

from sentinel_async.agents.clients.errors import (
    MalformedResponseError,
    ModelServerRequestError,
    ModelServerTimeoutError,
    ModelServerUnavailableError,
)

T = TypeVar("T")
SleepFn = Callable[[float], Awaitable[None]]

RETRYABLE_STATUSES = frozenset({408, 429})
"""HTTP statuses retried besides every 5xx."""


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach an OpenAI-compatible server (`vllm serve`, ...) and how to sample from it.

    `base_url` includes the `/v1` prefix, e.g. `http://127.0.0.1:8000/v1`. A request is tried
    `1 + max_retries` times; the wait before retry n is `min(backoff_cap_s, backoff_base_s * 2**(n-1))`
    scaled by a random factor in [0.5, 1) (and at least the server's `Retry-After`, capped).
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None


def server_message(body: bytes) -> str:
    """The error text of a server's error body: vLLM's `{"error": {...}}`, its older flat layout, or raw text."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", errors="replace").strip()
        return text[:500] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type")
            return f"{err['message']} ({kind})" if kind else str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(obj.get("message"), str):
            return str(obj["message"])
        if "detail" in obj:
            return str(obj["detail"])
    return body.decode("utf-8", errors="replace")[:500]


def decode_as(body: bytes, type_: type[T], url: str) -> T:
    """Decode a JSON body into `type_`, turning any mismatch into a `MalformedResponseError` naming it."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as e:
        raise MalformedResponseError(url, f"unexpected shape: {e}") from e
    except msgspec.DecodeError as e:
        snippet = body[:80].decode("utf-8", errors="replace")
        raise MalformedResponseError(url, f"body is not valid JSON ({e}): {snippet!r}") from e


class HttpTransport:
    """JSON over aiohttp with retries on transient failures. Use as an async context manager or `aclose()`.

    `rng` and `sleep` are injectable so tests can make backoff deterministic and instant.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        self._rng = rng if rng is not None else random.Random()
        self._sleep: SleepFn = sleep if sleep is not None else asyncio.sleep
        self.backoff_delays: list[float] = []
        """Every backoff delay waited, in order (for tests and logs)."""

    def url(self, path: str) -> str:
        """The full URL of an endpoint path such as `/chat/completions`."""
        return self.config.base_url.rstrip("/") + "/" + path.lstrip("/")

    async def post(self, path: str, payload: dict[str, Any], response_type: type[T]) -> T:
        """POST `payload` as JSON and decode the 200 response into `response_type`."""
        body = await self.request("POST", path, payload)
        return decode_as(body, response_type, self.url(path))

    async def get(self, path: str, response_type: type[T]) -> T:
        """GET `path` and decode the 200 response into `response_type`."""
        body = await self.request("GET", path, None)
        return decode_as(body, response_type, self.url(path))

    async def request(self, method: str, path: str, payload: dict[str, Any] | None) -> bytes:
        """Send one request with retries; return the raw body of the first 2xx answer."""
        url = self.url(path)
        data = msgspec.json.encode(payload) if payload is not None else None
        attempts = self.config.max_retries + 1
        last_error = ""
        timed_out = False
        retry_after: float | None = None
        for attempt in range(attempts):
            if attempt:
                await self._backoff(attempt, retry_after)
            retry_after = None
            try:
                status, body, retry_after = await self._once(method, url, data)
            except TimeoutError:
                last_error, timed_out = f"no response within {self.config.timeout_s:g}s", True
                continue
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                last_error, timed_out = f"{type(e).__name__}: {e}", False
                continue
            if status >= 500 or status in RETRYABLE_STATUSES:
                last_error, timed_out = f"HTTP {status}: {server_message(body)}", False
                continue
            if status >= 400:
                raise ModelServerRequestError(url, status, server_message(body))
            return body
        error_type = ModelServerTimeoutError if timed_out else ModelServerUnavailableError
        raise error_type(url, attempts, last_error)

    async def _once(self, method: str, url: str, data: bytes | None) -> tuple[int, bytes, float | None]:
        session = self._get_session()
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with session.request(method, url, data=data, headers=headers, timeout=timeout) as resp:
            body = await resp.read()
            return resp.status, body, _parse_retry_after(resp.headers.get("Retry-After"))

    async def _backoff(self, attempt: int, retry_after: float | None) -> None:
        cfg = self.config
        delay = min(cfg.backoff_cap_s, cfg.backoff_base_s * 2 ** (attempt - 1))
        delay *= 0.5 + 0.5 * self._rng.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.backoff_cap_s))
        self.backoff_delays.append(delay)
        await self._sleep(delay)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP session if this transport created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
