"""Recurring failure patterns across episodes, with a history over rounds (new, persistent, resolved).

A pattern is keyed by category and, for write, lookup and protocol categories, a sub-key (the tool, or the
protocol problem) read from the diagnosis' first evidence (`subkey_of`), which the Proposer uses to aim its
recipes (`targets.recipe_for`). A round closes every time the Controller emits
`FailurePatternsUpdated`. Status after a round: `new` when seen this round but not the one before, `persistent`
when seen in both, `resolved` once not seen for `resolve_after` rounds in a row (earlier status kept until then).

The tracker is a pure fold over the Controller's own events: `observe` each `FailureDiagnosed`, `close_round`
at each `FailurePatternsUpdated`; `PatternTracker.rebuild(events)` therefore resumes exactly after a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Literal

import msgspec

from sentinel_async.agents.controller.analyser import subkey_of
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.events import Event, FailureDiagnosed, FailurePattern, FailurePatternsUpdated

Status = Literal["new", "persistent", "resolved"]

KEYED_CATEGORIES: frozenset[str] = frozenset(
    c.value
    for c in (
        FailureCategory.WRONG_ITEM,
        FailureCategory.WRONG_ORDER,
        FailureCategory.MISSING_ITEMS,
        FailureCategory.WRONG_ITEM_SEQUENCE,
        FailureCategory.WRONG_PAYMENT,
        FailureCategory.WRONG_REASON,
        FailureCategory.WRONG_ADDRESS,
        FailureCategory.WRONG_ARGUMENT,
        FailureCategory.WRONG_ACTION,
        FailureCategory.MISSING_WRITE,
        FailureCategory.EXTRA_WRITE,
        FailureCategory.NO_CONFIRMATION,
        FailureCategory.POLICY_VIOLATION,
        FailureCategory.PROTOCOL_ERROR,
        FailureCategory.PREMATURE_STOP,
        FailureCategory.MISSING_LOOKUP,
        FailureCategory.MAX_STEPS,
        FailureCategory.TOO_MANY_ERRORS,
    )
)
"""Categories split by sub-key (the tool, or the protocol problem); the others are one pattern each. A lookup
never made is keyed by its tool (a product lookup and an order lookup are different skills), and a run that
hit the step or error limit by the gold write it never made, when the evidence names one."""


def pattern_id(category: str, subkey: str | None) -> str:
    """The deterministic id of a pattern: `category` or `category:subkey`."""
    return f"{category}:{subkey}" if subkey else category


def pattern_of(event: FailureDiagnosed) -> tuple[str, str, str | None]:
    """`(pattern_id, category, subkey)` of a diagnosis."""
    subkey = subkey_of(event.evidence) if event.category in KEYED_CATEGORIES else None
    return pattern_id(event.category, subkey), event.category, subkey


class _State(msgspec.Struct, kw_only=True):
    category: str
    subkey: str | None
    count: int = 0
    status: Status = "new"
    first_round: int = 0
    last_round: int = 0  # the last round it was seen in
    latest: str = ""
    episode_ids: deque[str] = msgspec.field(default_factory=deque)


class PatternTracker:
    """Aggregates diagnoses into patterns; a pure fold over `FailureDiagnosed` / `FailurePatternsUpdated`."""

    def __init__(self, *, resolve_after: int = 2, max_episode_ids: int = 20) -> None:
        if resolve_after < 1 or max_episode_ids < 1:
            raise ValueError("resolve_after and max_episode_ids must be at least 1")
        self.resolve_after = resolve_after
        self.max_episode_ids = max_episode_ids
        self.round = 0  # the round being filled (closed rounds: 0 .. round - 1)
        self.pending = 0  # diagnoses since the last close
        self._patterns: dict[str, _State] = {}
        self._seen_now: set[str] = set()

    def observe(self, event: FailureDiagnosed) -> str:
        """Count a diagnosis in the current round; returns its pattern id."""
        pid, category, subkey = pattern_of(event)
        state = self._patterns.get(pid)
        if state is None:
            state = self._patterns[pid] = _State(category=category, subkey=subkey, first_round=self.round)
        state.count += 1
        state.latest = event.summary
        if event.episode_id not in state.episode_ids:
            state.episode_ids.append(event.episode_id)
            while len(state.episode_ids) > self.max_episode_ids:
                state.episode_ids.popleft()
        self._seen_now.add(pid)
        self.pending += 1
        return pid

    def close_round(self) -> list[FailurePattern]:
        """End the current round: update every pattern's status and return the view (most frequent first)."""
        for pid, state in self._patterns.items():
            if pid in self._seen_now:
                seen_before = state.last_round == self.round - 1 and state.first_round < self.round
                state.status = "persistent" if seen_before and state.status != "resolved" else "new"
                state.last_round = self.round
            elif self.round - state.last_round >= self.resolve_after:
                state.status = "resolved"
        self._seen_now = set()
        self.round += 1
        self.pending = 0
        return self.patterns()

    def patterns(self) -> list[FailurePattern]:
        """The patterns as of the last closed round (counts include the current one)."""
        ordered = sorted(self._patterns.items(), key=lambda kv: (kv[1].status == "resolved", -kv[1].count, kv[0]))
        return [
            FailurePattern(
                pattern_id=pid,
                category=state.category,
                description=_describe(state),
                count=state.count,
                status=state.status,
                episode_ids=list(state.episode_ids),
                subkey=state.subkey,
            )
            for pid, state in ordered
        ]

    def apply(self, event: Event) -> None:
        """Fold one of the Controller's own events."""
        if isinstance(event, FailureDiagnosed):
            self.observe(event)
        elif isinstance(event, FailurePatternsUpdated):
            self.close_round()

    @classmethod
    def rebuild(cls, events: Iterable[Event], *, resolve_after: int = 2, max_episode_ids: int = 20) -> PatternTracker:
        """The tracker after folding `events` (the Controller's stream, in order)."""
        tracker = cls(resolve_after=resolve_after, max_episode_ids=max_episode_ids)
        for event in events:
            tracker.apply(event)
        return tracker


def _describe(state: _State) -> str:
    where = f" in {state.subkey}" if state.subkey else ""
    return f"{state.category}{where}: {state.count} failed episode(s); latest: {state.latest}"
