"""The training rollout worker: pool-driven rounds of groups, whole episodes only, resumable after a crash."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.agents.evaluation import register_tasks
from sentinel_async.agents.rollout_worker import RolloutConfig, RolloutWorker
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser, derive_user_script
from sentinel_async.events import EpisodeFinished, EpisodeStarted, TaskAdmitted, TasksSampled
from sentinel_async.store import EventFilter, SQLiteEventStore
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain

DOMAIN = RetailDomain()


class SimulatedCrashError(Exception):
    pass


def worker(store: SQLiteEventStore, crash_after: int | None = None) -> RolloutWorker:
    done = 0

    def on_done(outcome: EpisodeOutcome) -> None:
        nonlocal done
        done += 1
        if crash_after is not None and done >= crash_after:
            raise SimulatedCrashError

    def make_policy(task: TaskSpec, seed: int) -> Any:
        return ScriptedExpert(task, DOMAIN)

    def make_user(task: TaskSpec, seed: int) -> Any:
        return ScriptedUser(derive_user_script(task, DOMAIN), seed=seed)

    return RolloutWorker(
        store,
        DOMAIN,
        run_id="run",
        make_policy=make_policy,
        make_user=make_user,
        policy_version=lambda: 0,
        config=RolloutConfig(rounds=3, tasks_per_round=3, group_size=2, concurrency=2),
        on_done=on_done,
    )


async def test_rounds_survive_a_crash_without_lost_or_repeated_episodes(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    with SQLiteEventStore(path) as store:
        await register_tasks(store, DOMAIN, DOMAIN.tasks("train")[:10], "train")
        with pytest.raises(ExceptionGroup) as crashed:
            await worker(store, crash_after=9).run()
        assert crashed.group_contains(SimulatedCrashError)
    with SQLiteEventStore(path) as store:  # restart
        await worker(store).run()
        rounds = [r.payload for r in store.read(filter=EventFilter.of(types=[TasksSampled]))]
        assert [r.round for r in rounds if isinstance(r, TasksSampled)] == [0, 1, 2]
        started = Counter(
            r.payload.episode_id for r in store.read(filter=EventFilter.of(types=[EpisodeStarted]))
            if isinstance(r.payload, EpisodeStarted)
        )  # fmt: skip
        finished = Counter(
            r.payload.episode_id for r in store.read(filter=EventFilter.of(types=[EpisodeFinished]))
            if isinstance(r.payload, EpisodeFinished)
        )  # fmt: skip
        assert len(finished) == 3 * 3 * 2
        assert set(started.values()) == {1}
        assert set(finished.values()) == {1}
        assert started.keys() == finished.keys(), "only whole episodes are in the log"
        for sampled in rounds:
            assert isinstance(sampled, TasksSampled)
            for chosen in sampled.tasks:
                assert {f"run-r{sampled.round}-{chosen.task_id}-{i}" for i in range(2)} <= finished.keys()
        admitted = [r for r in store.read(filter=EventFilter.of(types=[TaskAdmitted]))]
        assert len(admitted) == 10, "each train task admitted once across the restart"
