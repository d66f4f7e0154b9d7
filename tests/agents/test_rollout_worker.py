"""The training rollout worker: pool-driven rounds of groups, whole episodes only, resumable after a crash."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.agents.evaluation import register_tasks
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.rollout_worker import RolloutConfig, RolloutWorker
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser, derive_user_script
from sentinel_async.events import EpisodeFinished, EpisodeStarted, TaskAdmitted, TasksSampled
from sentinel_async.messages import ChatMessage
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


class GivesUp:
    """A policy that ends every conversation at once (so every one of its episodes fails)."""

    async def act(self, conversation: Any, tools: Any) -> PolicyTurn:
        return PolicyTurn(message=ChatMessage(role="assistant", content="Goodbye. ###STOP###"))


def guided_worker(store: SQLiteEventStore, config: RolloutConfig, **kwargs: Any) -> RolloutWorker:
    """A worker whose own episodes all fail (`GivesUp`) and whose guides the scripted expert plays."""
    return RolloutWorker(
        store,
        DOMAIN,
        run_id="run",
        make_policy=lambda task, seed: GivesUp(),
        make_user=lambda task, seed: ScriptedUser(derive_user_script(task, DOMAIN), seed=seed),
        policy_version=lambda: 0,
        config=config,
        make_guide=lambda task, seed: ScriptedExpert(task, DOMAIN),
        **kwargs,
    )


async def test_guide_episodes_open_each_group_and_never_count_as_the_policys_results(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "events.sqlite") as store:
        await register_tasks(store, DOMAIN, DOMAIN.tasks("train")[:4], "train")
        worker = guided_worker(store, RolloutConfig(rounds=1, tasks_per_round=2, group_size=2, expert_episodes=1))
        await worker.run()
        finished = [
            (r.position, r.payload) for r in store.read(filter=EventFilter.of(types=[EpisodeFinished]))
            if isinstance(r.payload, EpisodeFinished)
        ]  # fmt: skip
        guides = {e.episode_id: (position, e) for position, e in finished if e.purpose == "guide"}
        own = [(position, e) for position, e in finished if e.purpose == "train"]
        assert len(guides) == 2
        assert len(own) == 4
        assert all(e.reward == 1.0 for _, e in guides.values()), "the expert solves its tasks"
        assert all(e.reward == 0.0 for _, e in own)
        for position, episode in own:
            group = episode.episode_id.rsplit("-", 1)[0]
            assert guides[f"{group}-guide0"][0] < position, "a group's guide is in the log before its own episodes"
        pool = worker.pool()
        played = [t for t in pool.tasks.values() if t.episodes]
        assert len(played) == 2
        assert all(t.episodes == 2 and t.pass_rate() == 0.0 for t in played), "the pool sees the policy's results"


def test_guide_episodes_need_a_guide() -> None:
    with pytest.raises(ValueError, match="expert_episodes needs a guide"):
        RolloutWorker(
            None,  # type: ignore[arg-type]
            DOMAIN,
            run_id="run",
            make_policy=lambda task, seed: GivesUp(),
            make_user=lambda task, seed: GivesUp(),  # type: ignore[arg-type,return-value]
            policy_version=lambda: 0,
            config=RolloutConfig(expert_episodes=1),
        )


async def test_groups_start_only_after_the_trainer_gate_opens(tmp_path: Path) -> None:
    """The gate is awaited before each round's concurrent groups (with their number), or before each guided
    group, so a run can hold rollouts back while the Solver catches up."""
    for expert_episodes, expected in ((0, [(2, 0), (2, 4)]), (1, [(1, 0), (1, 3), (1, 6), (1, 9)])):
        with SQLiteEventStore(tmp_path / f"events{expert_episodes}.sqlite") as store:
            await register_tasks(store, DOMAIN, DOMAIN.tasks("train")[:6], "train")
            calls: list[tuple[int, int]] = []

            async def gate(groups: int, store: SQLiteEventStore = store, calls: list[tuple[int, int]] = calls) -> None:
                finished = sum(1 for _ in store.read(filter=EventFilter.of(types=[EpisodeFinished])))
                calls.append((groups, finished))

            config = RolloutConfig(rounds=2, tasks_per_round=2, group_size=2, expert_episodes=expert_episodes)
            await guided_worker(store, config, wait_for_trainer=gate).run()
            # unguided: once per round, for its two groups, after the previous round's episodes;
            # guided: before each group (its guide and two episodes), after the previous group's
            assert calls == expected
