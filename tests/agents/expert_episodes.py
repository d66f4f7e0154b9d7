"""The dialogue expert played with the scripted user on real retail tasks, and the text its turns could copy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from sentinel_async.agents.episode import EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.scripted import ScriptedUser, derive_user_script
from sentinel_async.agents.scripted.dialogue_expert import DialogueExpert
from sentinel_async.messages import ChatMessage
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator


def play_all(domain: RetailDomain, tasks: Sequence[TaskSpec]) -> list[EpisodeOutcome]:
    """One expert episode per task, in order; the i-th plays with user seed i."""
    runner = EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)

    async def run() -> list[EpisodeOutcome]:
        outcomes: list[EpisodeOutcome] = []
        for task in tasks:
            script = derive_user_script(task, domain)
            policy = DialogueExpert(task, domain, script=script)
            seed = len(outcomes)
            user = ScriptedUser(script, seed=seed)
            outcomes.append(
                await runner.run(task=task, policy=policy, user=user, episode_id=f"dx-{task.id}", seed=seed)
            )
        return outcomes

    return asyncio.run(run())


def strings(value: object) -> list[str]:
    """The non-empty string leaves of a tool call's arguments."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) and value else []


def visible(messages: Sequence[ChatMessage]) -> str:
    """The messages' text and tool-call arguments, as one string to search."""
    return " ".join(m.content + " ".join(json.dumps(c.arguments) for c in m.tool_calls) for m in messages)
