"""The Tau2-Bench retail domain on tau2's own tools, database and policy, with cheap per-episode forks."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sentinel_async.messages import ToolCall, ToolOutcome
from sentinel_async.tools.base import Split, TaskSpec
from sentinel_async.tools.retail.store import RetailFork, RetailStore, TableKey, retail_store
from sentinel_async.tools.retail.tasks import retail_tasks
from sentinel_async.tools.tau2_compat import tau2_messages, tau2_retail


class RetailEnvironment:
    """One episode's retail database and tau2's `RetailTools` bound to it."""

    def __init__(self, fork: RetailFork, policy: str, write_tools: frozenset[str]) -> None:
        api = tau2_retail()
        self._fork = fork
        self._write_tools = write_tools
        self._tool_call_class = tau2_messages().tool_call
        self._env: Any = api.environment_class(
            domain_name="retail", policy=policy, tools=api.retail_tools_class(fork.db)
        )

    @property
    def db(self) -> Any:
        """This episode's pydantic `RetailDB` (writes through the tools only)."""
        return self._fork.db

    def call(self, call: ToolCall) -> ToolOutcome:
        """Run one tool call through tau2's `Environment.get_response`: same content, same errors.

        A failing tool, an unknown tool name or wrong arguments give `error=True` and tau2's text
        (`Error: Tool 'x' not found.`, `Error: ...missing 1 required positional argument...`); never raises.
        """
        try:
            tau2_call = self._tool_call_class(id=call.id, name=call.name, arguments=dict(call.arguments))
            message = self._env.get_response(tau2_call)
        except Exception as exc:  # tau2 catches tool errors itself; this guards its JSON conversion.
            return ToolOutcome(content=f"Error: {exc}", error=True)
        return ToolOutcome(content=message.content or "", error=bool(message.error))

    def state_hash(self) -> str:
        """Exactly tau2's `get_db_hash()` of this episode's database."""
        return self._fork.state_hash()

    def changes(self) -> dict[TableKey, str | None]:
        """The entities that differ from the base database (their hashed JSON text; None: deleted)."""
        return self._fork.changes()

    def is_write_tool(self, name: str) -> bool:
        """Whether the tool changes the database (tau2's `ToolType.WRITE`)."""
        return name in self._write_tools

    def tau2_environment(self) -> Any:
        """The tau2 `Environment` over this episode's database (for tau2's own code)."""
        return self._env


class RetailDomain:
    """Tau2-Bench retail: tau2's 15 tools, policy, 114 tasks (train 74 / test 40) and database.

    The database is parsed once per process; `new_environment()` forks it in microseconds.
    """

    name = "retail"

    def __init__(self, store: RetailStore | None = None) -> None:
        self._store = store or retail_store()

    @functools.cached_property
    def _probe(self) -> Any:
        api = tau2_retail()
        return api.retail_tools_class(self._store.db)

    @functools.cached_property
    def _schemas(self) -> list[dict[str, Any]]:
        return [tool.openai_schema for tool in self._probe.get_tools().values()]

    @functools.cached_property
    def _write_tools(self) -> frozenset[str]:
        write = tau2_retail().tool_type_write
        return frozenset(name for name in self._probe.tools if self._probe.tool_type(name) == write)

    @functools.cached_property
    def _policy(self) -> str:
        return tau2_retail().policy_path.read_text()

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tools in OpenAI function format (a fresh copy)."""
        return copy.deepcopy(self._schemas)

    def tool_names(self) -> tuple[str, ...]:
        return tuple(schema["function"]["name"] for schema in self._schemas)

    def write_tools(self) -> frozenset[str]:
        """The names of the tools that change the database."""
        return self._write_tools

    def is_write_tool(self, name: str) -> bool:
        return name in self._write_tools

    def policy(self) -> str:
        return self._policy

    def tasks(self, split: Split = "base") -> list[TaskSpec]:
        return retail_tasks(split)

    def task(self, task_id: str) -> TaskSpec:
        """One benchmark task by id ("0".."113")."""
        for task in retail_tasks("base"):
            if task.id == task_id:
                return task
        raise KeyError(f"no retail task with id {task_id!r}")

    def new_environment(self) -> RetailEnvironment:
        return RetailEnvironment(self._store.fork(), self._policy, self._write_tools)

    def base_hash(self) -> str:
        """tau2's `get_db_hash()` of the unmodified database."""
        return self._store.base_hash

    @property
    def store(self) -> RetailStore:
        return self._store

    @property
    def db(self) -> Any:
        """The shared base `RetailDB` (pydantic). Read it only: every environment forks from it."""
        return self._store.db

    @property
    def users(self) -> Mapping[str, Any]:
        """user_id -> tau2 `User` (read only)."""
        return MappingProxyType(self._store.db.users)

    @property
    def orders(self) -> Mapping[str, Any]:
        """order_id ("#W...") -> tau2 `Order` (read only)."""
        return MappingProxyType(self._store.db.orders)

    @property
    def products(self) -> Mapping[str, Any]:
        """product_id -> tau2 `Product` with its variants (read only)."""
        return MappingProxyType(self._store.db.products)
