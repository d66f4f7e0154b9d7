"""The 114 Tau2-Bench retail tasks as TaskSpec, and conversion to and from tau2's `Task` model."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from sentinel_async.tools.base import Split, TaskSpec
from sentinel_async.tools.tau2_compat import tau2_retail

# TaskSpec fields that tau2's Task model does not have.
_SENTINEL_ONLY_FIELDS = ("user_script",)


@functools.cache
def _all_tasks() -> tuple[TaskSpec, ...]:
    api = tau2_retail()
    return tuple(msgspec.json.decode(api.tasks_path.read_bytes(), type=list[TaskSpec]))


@functools.cache
def task_splits() -> dict[str, tuple[str, ...]]:
    """tau2's split file: split name ("train", "test", "base") -> task ids."""
    raw = msgspec.json.decode(tau2_retail().split_path.read_bytes(), type=dict[str, list[str]])
    return {name: tuple(ids) for name, ids in raw.items()}


def retail_tasks(split: Split = "base") -> list[TaskSpec]:
    """The retail tasks of one split, in tasks.json order (74 train, 40 test, 114 base)."""
    splits = task_splits()
    if split not in splits:
        raise ValueError(f"unknown retail split {split!r}; expected one of {sorted(splits)}")
    wanted = set(splits[split])
    return [task for task in _all_tasks() if task.id in wanted]


def task_to_tau2(task: TaskSpec) -> Any:
    """The tau2 `Task` model of a TaskSpec (sentinel-only fields dropped)."""
    data = msgspec.to_builtins(task)
    for name in _SENTINEL_ONLY_FIELDS:
        data.pop(name, None)
    return tau2_retail().task_class.model_validate(data)


def task_from_tau2(task: Any) -> TaskSpec:
    """A TaskSpec from a tau2 `Task` model (or its JSON dump as a dict)."""
    data = task if isinstance(task, dict) else task.model_dump(mode="json")
    return msgspec.convert(data, TaskSpec)
