"""Rollout backpressure: how far the Solver is behind the rollouts, read from the log.

A group is trained at the version current when the Solver reaches it; every complete group ahead of it in the
Solver's queue can add a version first. A group started while more than `max_staleness` groups wait would be
dropped as stale when its turn comes, its episodes played for nothing. `TrainerBacklog.wait` holds new groups
back until the queue is short enough (as AReaL bounds staleness by pausing generation). A version the trainer
has published but the rollout engine does not serve yet counts as one more group ahead: episodes started now
are played by the older version.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from sentinel_async.agents.solver.batching import GROUP_EVENTS, GroupTracker
from sentinel_async.events import PolicyUpdated
from sentinel_async.logs import get_logger
from sentinel_async.store import EventFilter, EventStore

_log = get_logger("solver")

_FILTER = EventFilter.of(types=[*GROUP_EVENTS, PolicyUpdated])


class TrainerBacklog:
    """Complete training groups the Solver has neither trained on nor dropped (the one in training included)."""

    def __init__(self, store: EventStore, group_size: int | None = None) -> None:
        self.store = store
        self.tracker = GroupTracker(group_size)
        self.position = 0
        self.published = 0
        """The last policy version the trainer committed."""

    def count(self) -> int:
        """The backlog now (reads only the events logged since the last call)."""
        for record in self.store.read(after=self.position, filter=_FILTER):
            if isinstance(record.payload, PolicyUpdated):
                self.published = max(self.published, record.payload.version)
            self.tracker.observe(record.payload)
            self.position = record.position
        return len(self.tracker.complete_groups())

    def ahead(self, serving: Callable[[], int] | None = None) -> int:
        """Versions that can land before a group started now is trained on: the backlog, plus the versions
        published but not yet served by the rollout engine (`serving` returns the version it serves)."""
        backlog = self.count()
        return backlog + (max(0, self.published - serving()) if serving is not None else 0)

    def allowed(self, starting: int, max_staleness: int) -> int:
        """The largest backlog under which `starting` groups played together cannot go stale: each group ahead
        of the last of them (the backlog's, then its siblings) can add one version."""
        return max(0, max_staleness + 1 - starting)

    async def wait(
        self,
        starting: int,
        max_staleness: int,
        *,
        serving: Callable[[], int] | None = None,
        poll: float = 0.1,
        timeout: float = 900.0,
    ) -> bool:
        """Return once `starting` new groups cannot go stale (True), or after `timeout` seconds (False, logged:
        the groups are played anyway and may be dropped as stale)."""
        limit = self.allowed(starting, max_staleness)
        with anyio.move_on_after(timeout):
            while self.ahead(serving) > limit:  # noqa: ASYNC110 - polling the log the Solver writes
                await anyio.sleep(poll)
            return True
        _log.warning("the trainer is still behind; playing on", ahead=self.ahead(serving), allowed=limit)
        return False
