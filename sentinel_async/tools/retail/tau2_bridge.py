"""Our episodes in tau2's own shapes: tau2 message objects, tau2's offline scoring, SimulationRun JSON."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from sentinel_async.messages import ChatMessage
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail.reward import SCORING_TERMINATIONS, RewardBreakdown
from sentinel_async.tools.retail.tasks import task_to_tau2
from sentinel_async.tools.tau2_compat import tau2_evaluation, tau2_messages, tau2_retail

_DEFAULT_START = 1_750_000_000.0  # a fixed epoch for reproducible timestamps when none are given
_STEP = 0.001  # seconds between synthesised message timestamps


def _iso(seconds: float) -> str:
    """tau2's timestamp format (naive ISO 8601, here in UTC, always with microseconds so it sorts)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def to_tau2_messages(
    messages: Sequence[ChatMessage],
    *,
    timestamps: Sequence[float] | None = None,
    start_time: float = _DEFAULT_START,
) -> list[Any]:
    """tau2 `AssistantMessage` / `UserMessage` / `ToolMessage` objects with `turn_idx` and timestamps.

    System messages are left out (tau2 trajectories have none). `timestamps` (epoch seconds, one per input
    message) default to `start_time` plus 1 ms per message. Empty text becomes `content=None` and no tool
    calls becomes `tool_calls=None`, as tau2's orchestrator records them.
    """
    if timestamps is not None and len(timestamps) != len(messages):
        raise ValueError(f"got {len(timestamps)} timestamps for {len(messages)} messages")
    api = tau2_messages()
    requestors: dict[str, str] = {}
    out: list[Any] = []
    for index, message in enumerate(messages):
        if message.role == "system":
            continue
        stamp = _iso(timestamps[index] if timestamps is not None else start_time + index * _STEP)
        common: dict[str, Any] = {"turn_idx": len(out), "timestamp": stamp}
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            out.append(
                api.tool(
                    id=call_id,
                    role="tool",
                    content=message.content,
                    requestor=requestors.get(call_id, "assistant"),
                    error=message.error,
                    **common,
                )
            )
            continue
        calls = None
        if message.tool_calls:
            calls = [
                api.tool_call(id=c.id, name=c.name, arguments=dict(c.arguments), requestor=message.role)
                for c in message.tool_calls
            ]
            requestors.update({c.id: message.role for c in message.tool_calls})
        model = api.assistant if message.role == "assistant" else api.user
        out.append(model(role=message.role, content=message.content or None, tool_calls=calls, **common))
    return out


class Tau2Reward(msgspec.Struct, frozen=True, kw_only=True):
    """A reward computed by tau2's own evaluators, and its per-component breakdown."""

    reward: float
    breakdown: dict[str, float] = msgspec.field(default_factory=dict)
    db_match: bool | None = None


def score_with_tau2(task: TaskSpec, messages: Sequence[ChatMessage], termination_reason: str) -> Tau2Reward:
    """Score with tau2's own code, offline: `evaluate_simulation`'s ALL mode without litellm.

    Runs `EnvironmentEvaluator` (on fresh `get_environment()` databases), `ActionEvaluator` and
    `CommunicateEvaluator`, and multiplies per reward basis as tau2 does (about 0.35 s per episode).
    Raises if tau2 does (for example when a recorded tool output differs from its replay).
    """
    if termination_reason not in SCORING_TERMINATIONS:
        return Tau2Reward(reward=0.0)
    tau2_task = task_to_tau2(task)
    if tau2_task.evaluation_criteria is None:
        return Tau2Reward(reward=1.0)
    ev = tau2_evaluation()
    trajectory = to_tau2_messages(messages)
    env_info = ev.environment_evaluator.calculate_reward(
        environment_constructor=tau2_retail().get_environment,
        task=tau2_task,
        full_trajectory=trajectory,
        solo_mode=False,
    )
    action_info = ev.action_evaluator.calculate_reward(task=tau2_task, full_trajectory=trajectory)
    comm_info = ev.communicate_evaluator.calculate_reward(task=tau2_task, full_trajectory=trajectory)
    kinds = ev.reward_type
    basis = set(tau2_task.evaluation_criteria.reward_basis)
    reward = 1.0
    breakdown: dict[str, float] = {}
    for bases, info in (
        ({kinds.DB, kinds.ENV_ASSERTION}, env_info),
        ({kinds.ACTION}, action_info),
        ({kinds.COMMUNICATE}, comm_info),
    ):
        if basis & bases:
            breakdown.update({str(k.value): float(v) for k, v in (info.reward_breakdown or {}).items()})
            reward *= info.reward
    if kinds.NL_ASSERTION in basis:
        raise ValueError("NL assertions are part of the reward basis, but they are not being evaluated.")
    db_match = env_info.db_check.db_match if env_info.db_check is not None else None
    return Tau2Reward(reward=float(reward), breakdown=breakdown, db_match=db_match)


def _reward_info(reward: RewardBreakdown, task: TaskSpec) -> dict[str, Any]:
    info: dict[str, Any] = {"reward": reward.reward, "reward_basis": list(reward.reward_basis) or None}
    if not reward.terminated_ok:
        info["info"] = {"note": reward.note}
        return info
    if reward.db is not None:
        info["db_check"] = {"db_match": reward.db == 1.0, "db_reward": reward.db}
    if task.communicate_info:
        info["communicate_checks"] = [
            {"info": s, "met": s not in reward.missing_info, "justification": ""} for s in task.communicate_info
        ]
    parts = {"DB": reward.db, "COMMUNICATE": reward.communicate, "ACTION": reward.action}
    info["reward_breakdown"] = {k: parts[k] for k in reward.reward_basis if parts.get(k) is not None}
    return info


def to_simulation_run(
    task: TaskSpec,
    messages: Sequence[ChatMessage],
    termination_reason: str,
    *,
    reward: RewardBreakdown | None = None,
    run_id: str | None = None,
    timestamps: Sequence[float] | None = None,
    start_time: float = _DEFAULT_START,
    end_time: float | None = None,
    trial: int | None = None,
    seed: int | None = None,
) -> Any:
    """A tau2 `SimulationRun` of one episode (with our reward as its `reward_info` when given)."""
    trajectory = to_tau2_messages(messages, timestamps=timestamps, start_time=start_time)
    if end_time is None:
        last = timestamps[-1] if timestamps else start_time + len(messages) * _STEP
        end_time = max(last, start_time)
    data: dict[str, Any] = {
        "id": run_id or str(uuid.uuid4()),
        "task_id": task.id,
        "timestamp": _iso(end_time),
        "start_time": _iso(start_time),
        "end_time": _iso(end_time),
        "duration": end_time - start_time,
        "termination_reason": termination_reason,
        "reward_info": _reward_info(reward, task) if reward is not None else None,
        "messages": trajectory,
        "trial": trial,
        "seed": seed,
    }
    return tau2_evaluation().simulation_run.model_validate(data)


def simulation_run_json(
    task: TaskSpec,
    messages: Sequence[ChatMessage],
    termination_reason: str,
    *,
    reward: RewardBreakdown | None = None,
    run_id: str | None = None,
    timestamps: Sequence[float] | None = None,
    start_time: float = _DEFAULT_START,
    trial: int | None = None,
) -> str:
    """`to_simulation_run(...)` as tau2's JSON (`SimulationRun.model_validate_json` reads it back)."""
    run = to_simulation_run(
        task,
        messages,
        termination_reason,
        reward=reward,
        run_id=run_id,
        timestamps=timestamps,
        start_time=start_time,
        trial=trial,
    )
    return str(run.model_dump_json())
