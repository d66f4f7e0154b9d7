"""The exceptions sentinel-async raises. Failures of an agent are events; these are failures of the system."""

from __future__ import annotations


class SentinelError(Exception):
    """Root of every error raised by sentinel-async. Its message says what happened and what to do."""


class ConcurrencyError(SentinelError):
    """Raised when an append's expected stream version is not the stream's current version."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected version {expected}; "
            "re-read the stream and retry"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventError(SentinelError):
    """Raised when an append reuses an event id that the log already holds."""


class CursorError(SentinelError):
    """Raised when a consumer's cursor would not move forward (its events were already processed)."""


class CorruptEventError(SentinelError):
    """Raised when a stored record cannot be decoded: an unknown event type or a damaged payload."""

    def __init__(self, position: int, event_type: str, reason: str) -> None:
        super().__init__(
            f"event at position {position} (type {event_type!r}) cannot be decoded: {reason}; "
            "pass skip_invalid=True (CLI: --skip-invalid) to read past such records"
        )
        self.position = position
        self.event_type = event_type
        self.reason = reason


class StoreLockedError(SentinelError):
    """Raised when another process already holds the log open for writing."""


class StoreOpenError(SentinelError):
    """Raised when a log file does not exist, cannot be created, or is not a sentinel event log."""


class StoreClosedError(SentinelError):
    """Raised when a store is used after it was closed."""
