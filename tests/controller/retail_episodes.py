"""Hand-built retail trajectories for the Controller tests, replayed through the real RetailDomain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentinel_async.agents.episode import EpisodeRunner
from sentinel_async.agents.evaluation import register_tasks
from sentinel_async.agents.recording import StreamRecorder
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser, derive_user_script
from sentinel_async.agents.scripted.faulty import (
    MalformedCallExpert,
    PrematureStopExpert,
    SkipsWriteExpert,
    WrongItemExpert,
)
from sentinel_async.events import EpisodeFinished, FailureDiagnosed
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.store import EventStore
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator

CONFIRM = "Here are the details. Do you confirm (yes/no)?"
YES = "Yes, please go ahead."

Step = tuple[Any, ...]
"""("user", text) | ("say", text) | ("call", name, arguments) | ("calls", [(name, arguments), ...], text)."""


class Played:
    """A hand-built episode: the messages and its `EpisodeFinished`, scored by the real evaluator."""

    def __init__(self, messages: list[ChatMessage], finished: EpisodeFinished) -> None:
        self.messages = messages
        self.finished = finished


def play(domain: RetailDomain, task: TaskSpec, steps: list[Step], *, termination: str = "user_stop") -> Played:
    """Execute the steps' calls on a fresh environment and score the episode like the runner does."""
    env = domain.new_environment()
    messages = [ChatMessage(role="assistant", content="Hi! How can I help you today?")]
    for step in steps:
        if step[0] == "user":
            messages.append(ChatMessage(role="user", content=step[1]))
        elif step[0] == "say":
            messages.append(ChatMessage(role="assistant", content=step[1]))
        else:
            pairs = [(step[1], step[2])] if step[0] == "call" else step[1]
            text = step[2] if step[0] == "calls" else ""
            calls = tuple(ToolCall(id=f"c{len(messages)}_{i}", name=n, arguments=a) for i, (n, a) in enumerate(pairs))
            messages.append(ChatMessage(role="assistant", content=text, tool_calls=calls))
            for call in calls:
                outcome = env.call(call)
                messages.append(
                    ChatMessage(
                        role="tool", content=outcome.content, tool_call_id=call.id, name=call.name, error=outcome.error
                    )
                )
    reward = Evaluator(domain).evaluate(task, messages, termination)
    parts = {"db": reward.db, "communicate": reward.communicate}
    finished = EpisodeFinished(
        episode_id=f"ep-{task.id}",
        task_id=task.id,
        termination=termination,
        reward=reward.reward,
        breakdown={k: v for k, v in parts.items() if v is not None},
        info={"steps": len(messages), "tool_errors": sum(m.error for m in messages)},
    )
    return Played(messages, finished)


def gold_steps(
    task: TaskSpec,
    domain: RetailDomain,
    *,
    replace: dict[int, list[Step]] | None = None,
    confirm: bool = True,
    say: str = "",
    stop: bool = True,
) -> list[Step]:
    """The gold actions one per turn (a confirmation and a yes before each write); `replace[i]` swaps action i."""
    steps: list[Step] = [("user", "Hi, I need help with my orders.")]
    for index, action in enumerate(task.gold_actions):
        if replace is not None and index in replace:
            steps += replace[index]
            continue
        if domain.is_write_tool(action.name) and confirm:
            steps += [("say", CONFIRM), ("user", YES)]
        steps.append(("call", action.name, dict(action.arguments)))
    steps.append(("say", f"All done. {say}".strip()))
    if stop:
        steps.append(("user", "Thanks! ###STOP###"))
    return steps


PLAN: list[tuple[str, Any]] = [
    ("0", ScriptedExpert),
    ("0", WrongItemExpert),
    ("1", SkipsWriteExpert),
    ("5", ScriptedExpert),
    ("5", PrematureStopExpert),
    ("6", MalformedCallExpert),
    ("7", WrongItemExpert),
    ("8", ScriptedExpert),
    ("9", SkipsWriteExpert),
]
EXPECTED = {
    "WrongItemExpert": "wrong_item",
    "SkipsWriteExpert": "missing_write",
    "PrematureStopExpert": "premature_stop",
    "MalformedCallExpert": "protocol_error",
}


async def produce(
    store: EventStore, domain: RetailDomain, tasks: dict[str, TaskSpec], plan: Sequence[tuple[str, Any]]
) -> dict[str, str]:
    """Run and record the episodes; returns episode id -> expected category (absent for successes)."""
    await register_tasks(store, domain, [tasks[t] for t in dict.fromkeys(t for t, _ in plan)], "base")
    runner = EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)
    expected: dict[str, str] = {}
    for n, (task_id, make) in enumerate(plan):
        task = tasks[task_id]
        episode_id = f"ep{n}-{make.__name__}-{task_id}"
        user = ScriptedUser(derive_user_script(task, domain))
        recorder = StreamRecorder(store, episode_id)
        outcome = await runner.run(
            task=task, policy=make(task, domain), user=user, episode_id=episode_id, seed=n, recorder=recorder
        )
        assert outcome.reward is not None
        assert outcome.reward.success == (make is ScriptedExpert)
        if make is not ScriptedExpert:
            expected[episode_id] = EXPECTED[make.__name__]
    return expected


def diagnoses(store: EventStore) -> list[FailureDiagnosed]:
    return [r.payload for r in store.read_stream("controller") if isinstance(r.payload, FailureDiagnosed)]
