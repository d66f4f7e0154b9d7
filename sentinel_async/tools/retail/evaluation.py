"""Our reward: identical to tau2's retail reward, computed in about a millisecond.

tau2 (`evaluate_simulation`, evaluation type ALL) scores an episode as follows, and so does `Evaluator`:

1. Termination gate: unless the episode ended by agent stop or user stop, the reward is 0.
2. DB: replay the trajectory's tool calls in order on a fresh database and the task's gold actions on
   another; 1 if the two databases are equal (tau2 compares `get_db_hash()`), else 0.
3. COMMUNICATE: every `communicate_info` string must occur, lower-cased, in the lower-cased text of some
   assistant message with its commas removed.
4. ACTION (only when in the basis): each gold action matches some tool call (name, and the arguments
   named by `compare_args`, or all of the call's arguments).
5. The reward is the product of the components named in the task's `reward_basis`.

It is faster than tau2's code because forks are copy-on-write instead of re-parsing db.json, the gold
database of each task is computed once, and retail databases are compared by their changed entities.
tau2's scoring, message conversion and SimulationRun export are re-exported here from `tau2_bridge`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import msgspec

from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import Domain, Environment, GoldAction, TaskSpec
from sentinel_async.tools.retail.reward import SCORING_TERMINATIONS, RewardBreakdown
from sentinel_async.tools.retail.tau2_bridge import (
    Tau2Reward,
    score_with_tau2,
    simulation_run_json,
    to_simulation_run,
    to_tau2_messages,
)

__all__ = [
    "Evaluator",
    "RewardBreakdown",
    "Tau2Reward",
    "communicate_check",
    "score_with_tau2",
    "simulation_run_json",
    "to_simulation_run",
    "to_tau2_messages",
]

_SUPPORTED_BASIS = frozenset({"DB", "COMMUNICATE", "ACTION"})


def communicate_check(messages: Sequence[ChatMessage], infos: Sequence[str]) -> tuple[str, ...]:
    """The `communicate_info` strings that no assistant message states (tau2's exact string rule)."""
    texts = [m.content.lower().replace(",", "") for m in messages if m.role == "assistant" and m.content.strip()]
    return tuple(info for info in infos if not any(info.lower() in text for text in texts))


def _action_matches(action: GoldAction, call: ToolCall) -> bool:
    """tau2's `Action.compare_with_tool_call`."""
    if action.name != call.name:
        return False
    keys = list(call.arguments) if action.compare_args is None else action.compare_args
    if not keys:
        return True
    predicted = {k: v for k, v in call.arguments.items() if k in keys}
    expected = {k: v for k, v in action.arguments.items() if k in keys}
    return predicted == expected


def action_progress(unmatched: Sequence[str], actions: Sequence[GoldAction]) -> float | None:
    """The share of the gold actions the trajectory matched, given the `unmatched_actions` (None without gold
    actions): how far a failed episode got, a diagnostic that never enters tau2's reward."""
    if not actions:
        return None
    return 1.0 - len(unmatched) / len(actions)


def unmatched_actions(messages: Sequence[ChatMessage], actions: Sequence[GoldAction]) -> tuple[str, ...]:
    """The ids of the gold actions that no tool call of the trajectory matches (tau2's ACTION check)."""
    calls = [call for m in messages if m.role in ("assistant", "user") for call in m.tool_calls]
    return tuple(a.action_id for a in actions if not any(_action_matches(a, call) for call in calls))


def _same_output(replayed: str, recorded: str) -> bool:
    """tau2's replay comparison: JSON-decoded when both decode, else as text."""
    if replayed == recorded:
        return True

    def decode(text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    return bool(decode(replayed) == decode(recorded))


def _fingerprint(env: Environment) -> object:
    """What decides DB equality: the changed entities for retail (exact), else the state hash."""
    changes = getattr(env, "changes", None)
    return changes() if callable(changes) else env.state_hash()


class Evaluator:
    """Scores episodes of one domain exactly like tau2's retail reward; thread-safe.

    Only assistant tool calls are replayed and only assistant-requested gold actions run: the domains
    here have no user tools (in tau2 such calls fail without changing the database).
    """

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self._gold: dict[tuple[str, bytes], object] = {}
        self._lock = threading.Lock()

    def gold_fingerprint(self, task: TaskSpec) -> object:
        """The database state after the task's gold actions (cached per task id and gold actions)."""
        actions = task.gold_actions
        key = (task.id, msgspec.json.encode(actions))
        with self._lock:
            cached = self._gold.get(key)
        if cached is not None:
            return cached
        env = self.domain.new_environment()
        for index, action in enumerate(actions):
            if action.requestor == "assistant":
                env.call(ToolCall(id=f"gold_{index}", name=action.name, arguments=action.arguments))
        fingerprint = _fingerprint(env)
        with self._lock:
            self._gold[key] = fingerprint
        return fingerprint

    def replay(self, messages: Sequence[ChatMessage]) -> tuple[Environment, int]:
        """A fresh environment after the trajectory's assistant tool calls, and how many outputs differed
        from the recorded tool messages (tau2 raises on any difference)."""
        recorded = {m.tool_call_id: m.content for m in messages if m.role == "tool" and m.tool_call_id}
        env = self.domain.new_environment()
        mismatches = 0
        for message in messages:
            if message.role != "assistant":
                continue
            for call in message.tool_calls:
                outcome = env.call(call)
                expected = recorded.get(call.id)
                if expected is None or not _same_output(outcome.content, expected):
                    mismatches += 1
        return env, mismatches

    def evaluate(self, task: TaskSpec, messages: Sequence[ChatMessage], termination_reason: str) -> RewardBreakdown:
        """Score one episode: the termination gate, then the product over the task's reward basis."""
        unmatched = unmatched_actions(messages, task.gold_actions)
        progress = action_progress(unmatched, task.gold_actions)
        if termination_reason not in SCORING_TERMINATIONS:
            return RewardBreakdown(
                reward=0.0,
                termination_reason=termination_reason,
                terminated_ok=False,
                progress=progress,
                note=f"terminated prematurely: {termination_reason}",
            )
        criteria = task.evaluation_criteria
        if criteria is None:
            return RewardBreakdown(
                reward=1.0, termination_reason=termination_reason, terminated_ok=True, note="no criteria"
            )
        basis = tuple(dict.fromkeys(criteria.reward_basis))
        unsupported = set(basis) - _SUPPORTED_BASIS
        if unsupported:
            raise ValueError(
                f"task {task.id!r}: reward basis {sorted(unsupported)} is not supported by the fast "
                "evaluator; use score_with_tau2"
            )
        if task.initial_state:
            raise ValueError(f"task {task.id!r} has an initial_state; use score_with_tau2 for it")

        if criteria.actions is None and criteria.env_assertions is None:
            db, mismatches = 1.0, 0  # tau2: nothing to compare, full DB reward
        else:
            env, mismatches = self.replay(messages)
            db = 1.0 if _fingerprint(env) == self.gold_fingerprint(task) else 0.0
        missing = communicate_check(messages, task.communicate_info)
        communicate = 0.0 if missing else 1.0
        action = 0.0 if unmatched else 1.0

        parts = {"DB": db, "COMMUNICATE": communicate, "ACTION": action}
        reward = 1.0
        for name in basis:
            reward *= parts[name]
        return RewardBreakdown(
            reward=reward,
            termination_reason=termination_reason,
            terminated_ok=True,
            reward_basis=basis,
            db=db,
            communicate=communicate,
            action=action,
            missing_info=missing,
            unmatched_actions=unmatched,
            replay_mismatches=mismatches,
            progress=progress,
        )
