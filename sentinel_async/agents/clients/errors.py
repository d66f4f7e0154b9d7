"""Errors raised by the model-server clients. Every one derives from `ModelServerError`."""

from __future__ import annotations

from sentinel_async.errors import SentinelError


class ModelServerError(SentinelError):
    """Root of the errors raised while talking to a model server (vLLM or any OpenAI-compatible one)."""


class ModelServerUnavailableError(ModelServerError):
    """Raised when transient failures (connection errors, timeouts, HTTP 408/429/5xx) outlast the retries."""

    def __init__(self, url: str, attempts: int, last_error: str) -> None:
        super().__init__(
            f"{url} failed {attempts} time(s), the last with: {last_error}; check that the server is up and "
            "not overloaded, or raise max_retries / timeout_s"
        )
        self.url = url
        self.attempts = attempts
        self.last_error = last_error


class ModelServerTimeoutError(ModelServerUnavailableError):
    """Raised when the last of the attempts timed out."""


class ModelServerRequestError(ModelServerError):
    """Raised on a non-retryable HTTP status (4xx other than 408/429); carries the server's own message."""

    def __init__(self, url: str, status: int, server_message: str) -> None:
        super().__init__(f"{url} answered HTTP {status}: {server_message}")
        self.url = url
        self.status = status
        self.server_message = server_message


class MalformedResponseError(ModelServerError):
    """Raised when a 200 response is not valid JSON or does not have the expected shape."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url} returned a malformed response: {reason}")
        self.url = url
        self.reason = reason
