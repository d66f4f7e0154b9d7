"""structlog configuration, done once per process: readable console lines for people, JSON when asked."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure_logging(*, json: bool | None = None, level: str | None = None) -> None:
    """Configure structlog once. `json` defaults to SENTINEL_LOG_JSON=1; `level` to SENTINEL_LOG_LEVEL or INFO."""
    global _configured
    if _configured:
        return
    if json is None:
        json = os.environ.get("SENTINEL_LOG_JSON", "") in {"1", "true", "yes"}
    level_name = (level or os.environ.get("SENTINEL_LOG_LEVEL", "INFO")).upper()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level_name]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (it may be swapped after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger bound to a component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
