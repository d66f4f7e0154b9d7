"""The domain interface: what an episode needs from a tool environment, and the task format (tau2's layout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import msgspec

from sentinel_async.messages import ToolCall, ToolOutcome

Split = Literal["train", "test", "base"]


class GoldAction(msgspec.Struct, frozen=True, kw_only=True):
    """One expected tool call of a task (tau2's `Action`)."""

    action_id: str
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    requestor: Literal["assistant", "user"] = "assistant"
    info: str | None = None
    compare_args: list[str] | None = None


class UserInstructions(msgspec.Struct, frozen=True, kw_only=True):
    """tau2's structured user instructions."""

    domain: str
    reason_for_call: str
    known_info: str | None = None
    unknown_info: str | None = None
    task_instructions: str = ""


class UserScenario(msgspec.Struct, frozen=True, kw_only=True):
    persona: str | None = None
    instructions: UserInstructions | str = ""


class TaskDescription(msgspec.Struct, frozen=True, kw_only=True):
    purpose: str | None = None
    relevant_policies: str | None = None
    notes: str | None = None


class EvaluationCriteria(msgspec.Struct, frozen=True, kw_only=True):
    actions: list[GoldAction] | None = None
    env_assertions: list[dict[str, Any]] | None = None
    communicate_info: list[str] | None = None
    nl_assertions: list[str] | None = None
    reward_basis: list[str] = msgspec.field(default_factory=lambda: ["DB", "COMMUNICATE"])


class TaskSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A task in tau2's tasks.json layout (so it round-trips to tau2), plus optional sentinel fields.

    `user_script` holds the structured facts a scripted user plays (written by the Proposer for generated
    tasks; derived from the gold actions and the database for benchmark tasks when absent).
    """

    id: str
    user_scenario: UserScenario
    evaluation_criteria: EvaluationCriteria | None = None
    description: TaskDescription | None = None
    initial_state: dict[str, Any] | None = None
    ticket: str | None = None
    user_script: dict[str, Any] | None = None

    @property
    def gold_actions(self) -> list[GoldAction]:
        criteria = self.evaluation_criteria
        return list(criteria.actions or []) if criteria else []

    @property
    def communicate_info(self) -> list[str]:
        criteria = self.evaluation_criteria
        return list(criteria.communicate_info or []) if criteria else []


class Environment(Protocol):
    """One episode's private, mutable copy of a domain's state."""

    def call(self, call: ToolCall) -> ToolOutcome:
        """Execute one tool call; a failing tool gives an outcome with error=True, never an exception."""
        ...

    def state_hash(self) -> str:
        """A hash of the whole state; equal states give equal hashes (tau2's `get_db_hash` for retail)."""
        ...


class Domain(Protocol):
    """A tool domain: schemas, policy text, tasks, and fresh environments forked from a cached base state."""

    name: str

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tools in OpenAI function format."""
        ...

    def tool_names(self) -> Sequence[str]: ...

    def policy(self) -> str: ...

    def tasks(self, split: Split = "base") -> list[TaskSpec]: ...

    def new_environment(self) -> Environment:
        """A fresh environment forked from the base state (cheap: no re-parsing)."""
        ...
