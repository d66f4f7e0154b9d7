"""The task pool: admission, the learnable band, retirement, the source mix, and rebuilding from the log."""

from __future__ import annotations

import random

from sentinel_async.agents.pool import PoolConfig, TaskPool
from sentinel_async.events import (
    EpisodeFinished,
    Event,
    TaskRegistered,
)
from sentinel_async.replay import project
from sentinel_async.store import MemoryEventStore


def registered(task_id: str, source: str = "benchmark", split: str | None = "train") -> TaskRegistered:
    return TaskRegistered(task_id=task_id, domain="retail", source=source, split=split)  # type: ignore[arg-type]


def finished(task_id: str, reward: float) -> EpisodeFinished:
    return EpisodeFinished(episode_id=f"{task_id}-{reward}", task_id=task_id, termination="user_stop", reward=reward)


async def pool_from(events: list[Event], config: PoolConfig | None = None) -> tuple[TaskPool, MemoryEventStore]:
    store = MemoryEventStore()
    for event in events:
        await store.append("log", [event])
    pool = project(store, TaskPool(config))
    decisions = pool.admissions()
    if decisions:
        await store.append("pool", decisions)
    return project(store, TaskPool(config)), store


async def test_train_and_proposed_tasks_are_admitted_but_never_test_tasks() -> None:
    pool, _ = await pool_from(
        [registered("1"), registered("2", split="test"), registered("gen-a", source="proposed", split=None)]
    )
    assert {t.task_id for t in pool.tasks.values() if t.active} == {"1", "gen-a"}
    assert pool.admissions() == []


async def test_solved_proposed_tasks_retire_and_originals_stay() -> None:
    config = PoolConfig(retire_after=3, give_up_after=4)
    events: list[Event] = [
        registered("1"),
        registered("gen-a", "proposed", None),
        registered("gen-b", "proposed", None),
    ]
    pool, store = await pool_from(events, config)
    for _ in range(4):
        await store.append("eps", [finished("1", 1.0), finished("gen-a", 1.0), finished("gen-b", 0.0)])
    pool = project(store, TaskPool(config))
    retired = {r.task_id: r.reason for r in pool.retirements()}
    assert retired == {"gen-a": "solved", "gen-b": "too hard"}
    await store.append("pool", pool.retirements())
    pool = project(store, TaskPool(config))
    assert {t.task_id for t in pool.tasks.values() if t.active} == {"1"}
    assert pool.tasks["gen-a"].retired_reason == "solved"


async def test_sampling_mixes_sources_by_ratio_and_prefers_the_learnable_band() -> None:
    config = PoolConfig(proposed_ratio=0.25)
    events: list[Event] = [registered(str(i)) for i in range(12)]
    events += [registered(f"gen-{i}", "proposed", None) for i in range(12)]
    pool, store = await pool_from(events, config)
    for i in range(6):  # tasks 0..5 in the band, 6..11 always solved
        await store.append("eps", [finished(str(i), 1.0), finished(str(i), 0.0)])
        await store.append("eps", [finished(str(i + 6), 1.0)])
    pool = project(store, TaskPool(config))
    rng = random.Random(0)
    draws = [pool.sample(8, rng) for _ in range(200)]
    for draw in draws:
        sources = [t.source for t in draw.tasks]
        assert sources.count("proposed") == 2
        assert len({t.task_id for t in draw.tasks}) == 8
    originals = [t for d in draws for t in d.tasks if t.source == "benchmark"]
    in_band = sum(t.reason == "band" for t in originals)
    assert in_band / len(originals) > 0.8, "band tasks have 16x the weight of solved ones"
    assert all(t.pass_rate == 0.5 for t in originals if t.reason == "band")


async def test_sampling_is_reproducible_from_the_seed_and_rounds_count_from_the_log() -> None:
    pool, store = await pool_from([registered(str(i)) for i in range(10)])
    first = pool.sample(4, random.Random(3))
    assert first == pool.sample(4, random.Random(3))
    await store.append("pool", [first])
    assert project(store, TaskPool()).sample(4, random.Random(3)).round == 1


async def test_more_proposed_tasks_fill_in_when_originals_run_out() -> None:
    events: list[Event] = [registered("1"), *(registered(f"gen-{i}", "proposed", None) for i in range(5))]
    pool, _ = await pool_from(events, PoolConfig(proposed_ratio=0.0))
    draw = pool.sample(4, random.Random(0))
    assert sorted(t.source for t in draw.tasks) == ["benchmark", "proposed", "proposed", "proposed"]
