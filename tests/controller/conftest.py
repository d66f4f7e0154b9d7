"""Fixtures for the Controller tests (they need the tau2 extra for the retail domain)."""

from __future__ import annotations

import importlib.util

import pytest

from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain

if importlib.util.find_spec("tau2") is None:  # pragma: no cover - the tau2 extra is installed in CI
    pytest.skip("needs the tau2 extra", allow_module_level=True)


@pytest.fixture(scope="session")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="session")
def tasks(domain: RetailDomain) -> dict[str, TaskSpec]:
    return {t.id: t for t in domain.tasks("base")}
