"""Exporting logged episodes in tau2's own formats, so tau2's tools can read them."""

from __future__ import annotations

import msgspec

from sentinel_async.agents.episode import evaluation_view
from sentinel_async.agents.recording import episode_stream, rebuild_episode
from sentinel_async.events import EpisodeStarted, TaskRegistered
from sentinel_async.store import EventStore
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.retail.evaluation import Evaluator, simulation_run_json


def logged_task(store: EventStore, domain: Domain, task_id: str) -> TaskSpec:
    """The task as the log registered it (proposed tasks live only there), else the domain's own."""
    for record in store.read_stream(f"task-{domain.name}-{task_id}"):
        if isinstance(record.payload, TaskRegistered):
            return msgspec.convert(record.payload.spec, TaskSpec)
    for task in domain.tasks("base"):
        if task.id == task_id:
            return task
    raise KeyError(f"task {task_id!r} is neither registered in the log nor a {domain.name} task")


def episode_ids(store: EventStore) -> list[str]:
    """Every episode id in the log, in the order they started."""
    from sentinel_async.store import EventFilter

    started = store.read(filter=EventFilter.of(types=[EpisodeStarted]))
    return [r.payload.episode_id for r in started if isinstance(r.payload, EpisodeStarted)]


def episode_simulation_run_json(store: EventStore, episode_id: str, domain: Domain) -> str:
    """One logged episode as tau2 `SimulationRun` JSON, with its reward recomputed by our evaluator."""
    episode = rebuild_episode(store, episode_id)
    if episode.finished is None:
        raise ValueError(f"episode {episode_id!r} did not finish in this log")
    task = logged_task(store, domain, episode.started.task_id)
    messages = evaluation_view(episode.messages)
    reward = Evaluator(domain).evaluate(task, messages, episode.finished.termination)
    # one timestamp per message: each message's event (the first event is EpisodeStarted)
    stamps = [r.timestamp for r in store.read_stream(episode_stream(episode_id))[1:-1]]
    return simulation_run_json(
        task,
        messages,
        episode.finished.termination,
        reward=reward,
        run_id=episode_id,
        timestamps=stamps if len(stamps) == len(messages) else None,
        start_time=episode.events[0].timestamp,
    )
