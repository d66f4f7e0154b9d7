"""Shared fixtures: one retail domain and one proposal engine per session (building them costs about 1 s)."""

from __future__ import annotations

import importlib.util
import random

import pytest

from sentinel_async.agents.proposer import TARGETED, Candidate, ProposalEngine, ProposerConfig
from sentinel_async.events import FailurePattern
from sentinel_async.tools.retail import RetailDomain

NEEDS_TAU2 = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")


def pattern(category: str, pattern_id: str | None = None) -> FailurePattern:
    return FailurePattern(
        pattern_id=pattern_id or f"pat-{category}",
        category=category,
        description=f"agents fail with {category}",
        count=3,
        episode_ids=[f"ep-{category}-1", f"ep-{category}-2"],
    )


@pytest.fixture(scope="session")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="session")
def engine(domain: RetailDomain) -> ProposalEngine:
    return ProposalEngine(domain, ProposerConfig())


@pytest.fixture(scope="session")
def candidates(engine: ProposalEngine) -> list[Candidate]:
    """One targeted candidate per recipe family and five general ones (all verified, tau2 included)."""
    out: list[Candidate] = []
    for index, family in enumerate(sorted(TARGETED)):
        out += engine.propose(pattern(family), 1, random.Random(index))
    general = ProposalEngine(engine.domain, ProposerConfig(mode="general"))
    out += general.propose(None, 5, random.Random(99))
    return out
