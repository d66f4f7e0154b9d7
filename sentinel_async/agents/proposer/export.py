"""Generated tasks as a tau2 tasks.json: a list of tau2 `Task` dicts (`user_script` dropped) that
`tau2.data_model.tasks.Task.model_validate` reads back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from sentinel_async.events import TaskProposed
from sentinel_async.store import EventFilter, EventStore
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import task_to_tau2


def tau2_task_dicts(tasks: Iterable[TaskSpec]) -> list[dict[str, Any]]:
    """Each task validated by tau2's own `Task` model and dumped as JSON-ready dicts."""
    return [task_to_tau2(task).model_dump(mode="json", exclude_none=True) for task in tasks]


def write_tasks_json(tasks: Sequence[TaskSpec], path: str | Path) -> Path:
    """Write a tau2 tasks.json; returns its path."""
    out = Path(path)
    out.write_text(json.dumps(tau2_task_dicts(tasks), indent=2) + "\n")
    return out


def proposed_tasks(store: EventStore) -> list[TaskSpec]:
    """Every task the Proposer committed to a log, in log order."""
    tasks = []
    for record in store.read(filter=EventFilter.of(types=[TaskProposed])):
        assert isinstance(record.payload, TaskProposed)
        tasks.append(msgspec.convert(record.payload.spec, TaskSpec))
    return tasks
