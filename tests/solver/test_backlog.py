"""Rollout backpressure: the Solver's backlog read from the log, and waiting until new groups cannot go stale."""

from __future__ import annotations

import anyio

from sentinel_async.agents.solver.backlog import TrainerBacklog
from sentinel_async.events import (
    BatchFormed,
    EpisodeFinished,
    EpisodeStarted,
    GroupsDropped,
    PolicyUpdated,
    Purpose,
)
from sentinel_async.store import MemoryEventStore


async def play_group(store: MemoryEventStore, group: str, *, size: int = 2, purpose: Purpose = "train") -> None:
    for i in range(size):
        episode = f"{group}-{i}"
        started = EpisodeStarted(
            episode_id=episode, task_id="t", domain="retail", policy_version=0, seed=i, group_id=group, purpose=purpose
        )
        finished = EpisodeFinished(
            episode_id=episode, task_id="t", termination="agent_stop", reward=0.0, purpose=purpose
        )
        await store.append(f"episode-{episode}", [started, finished])


async def test_the_backlog_counts_complete_groups_the_solver_has_not_consumed() -> None:
    store = MemoryEventStore()
    backlog = TrainerBacklog(store, group_size=2)
    await play_group(store, "g1")
    await play_group(store, "g2")
    await play_group(store, "g3", size=1)  # still playing: not in the queue yet
    await play_group(store, "eval", purpose="eval")  # evaluation episodes are never training material
    assert backlog.count() == 2
    await store.append("solver", [BatchFormed(batch_id="b1", step=1, episode_ids=["g1-0", "g1-1"], groups={"g1": []})])
    assert backlog.count() == 1
    await store.append("solver", [GroupsDropped(groups={"g2": "zero_variance"})])
    assert backlog.count() == 0


def test_how_many_groups_may_wait_ahead_of_new_ones() -> None:
    backlog = TrainerBacklog(MemoryEventStore())
    assert backlog.allowed(starting=1, max_staleness=2) == 2, "two updates ahead: trained two versions on"
    assert backlog.allowed(starting=2, max_staleness=2) == 1, "a sibling trained first adds one version too"
    assert backlog.allowed(starting=4, max_staleness=2) == 0, "never below an empty queue"


async def test_waiting_ends_when_the_solver_catches_up_and_gives_up_after_the_timeout() -> None:
    store = MemoryEventStore()
    backlog = TrainerBacklog(store, group_size=2)
    for name in ("g1", "g2"):
        await play_group(store, name)
    assert await backlog.wait(1, max_staleness=1, poll=0.01, timeout=0.1) is False, "two ahead, one allowed"
    waited = anyio.Event()

    async def wait() -> None:
        assert await backlog.wait(1, max_staleness=1, poll=0.01)
        waited.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.sleep(0.05)
        assert not waited.is_set()
        await store.append("solver", [BatchFormed(batch_id="b1", step=1, episode_ids=[], groups={"g1": []})])
        with anyio.fail_after(2):
            await waited.wait()


async def test_a_published_version_the_rollouts_do_not_serve_yet_counts_as_one_ahead() -> None:
    """Episodes started before the new weights arrive are played by the old version, a version further behind."""
    store = MemoryEventStore()
    backlog = TrainerBacklog(store, group_size=2)
    await play_group(store, "g1")
    await store.append(
        "solver",
        [
            BatchFormed(batch_id="b1", step=1, episode_ids=[], groups={"g1": []}),
            PolicyUpdated(version=1, batch_id="b1", checkpoint="v000001"),
        ],
    )
    assert backlog.ahead(serving=lambda: 0) == 1, "v1 is published, the rollouts still play v0"
    assert backlog.ahead(serving=lambda: 1) == 0
    assert await backlog.wait(1, max_staleness=0, serving=lambda: 0, poll=0.01, timeout=0.05) is False
    assert await backlog.wait(1, max_staleness=0, serving=lambda: 1, poll=0.01, timeout=0.05) is True
