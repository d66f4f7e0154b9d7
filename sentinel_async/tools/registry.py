"""Domains by name, for the command line and configuration files."""

from __future__ import annotations

from sentinel_async.errors import SentinelError
from sentinel_async.tools.base import Domain

DOMAINS = ("retail", "library")


def get_domain(name: str) -> Domain:
    """The domain called `name`: "retail" (Tau2-Bench retail, needs the tau2 extra) or "library" (tiny)."""
    if name == "retail":
        try:
            from sentinel_async.tools.retail import RetailDomain
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SentinelError(f"the retail domain needs tau2: pip install 'sentinel-async[tau2]' ({exc})") from None
        return RetailDomain()
    if name == "library":
        from sentinel_async.tools.tiny import LibraryDomain

        return LibraryDomain()
    raise SentinelError(f"unknown domain {name!r}; choose one of {', '.join(DOMAINS)}")
