"""Real token-level episodes of the tiny library domain, played by a tiny random Qwen3, for the solver tests.

Episodes run once per session (TokenPolicy + TransformersGenerator, a scripted user that speaks twice then
stops) and are copied into a fresh store per test. Rewards alternate 0, 1 in finishing order (concurrency 1),
so every group of 4 has variance; `flat_rewards` gives a group with all-equal rewards.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from sentinel_async.agents.clients import SamplingParams, TokenPolicy, TransformersGenerator
from sentinel_async.agents.episode import EpisodeConfig, EpisodeRunner
from sentinel_async.agents.rollout import plan_trials, run_episodes
from sentinel_async.events import RecordedEvent
from sentinel_async.messages import ChatMessage
from sentinel_async.store import EventStore, MemoryEventStore, StreamAppend
from sentinel_async.testing.tiny_models import build_tiny_qwen3, build_tiny_tokenizer
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail.reward import RewardBreakdown
from sentinel_async.tools.tiny import LibraryDomain

DOMAIN = LibraryDomain()
GROUP = 4


class TwoLineUser:
    """Says the reason for the call, asks again once, then stops."""

    def __init__(self, task: TaskSpec) -> None:
        self.task = task

    async def respond(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        said = sum(m.role == "user" for m in conversation)
        if said >= 2:
            return ChatMessage(role="user", content="Thanks. ###STOP###")
        instructions = self.task.user_scenario.instructions
        reason = instructions if isinstance(instructions, str) else instructions.reason_for_call
        return ChatMessage(role="user", content=reason if said == 0 else "Please go on.")


def alternating_rewards() -> Any:
    counter = itertools.count()

    def evaluate(task: TaskSpec, messages: Sequence[ChatMessage], termination_reason: str) -> RewardBreakdown:
        return RewardBreakdown(
            reward=float(next(counter) % 2), termination_reason=termination_reason, terminated_ok=True
        )

    return evaluate


def tiny_model(tokenizer: Any, seed: int = 0) -> Any:
    return build_tiny_qwen3(len(tokenizer), eos_token_id=tokenizer.eos_token_id, seed=seed)


async def play(
    store: EventStore, policy: TokenPolicy, *, prefix: str, tasks: int = 2, evaluate: Any = None
) -> list[str]:
    """Run GROUP episodes of the first `tasks` train tasks under the policy's version; returns episode ids."""
    runner = EpisodeRunner(
        domain=DOMAIN, config=EpisodeConfig(max_steps=12), evaluate=evaluate or alternating_rewards()
    )
    jobs = plan_trials(DOMAIN.tasks("train")[:tasks], GROUP, seed=3, prefix=prefix)
    outcomes = await run_episodes(
        runner,
        jobs,
        make_policy=lambda task, seed: policy,
        make_user=lambda task, seed: TwoLineUser(task),
        store=store,
        concurrency=1,
        policy_version=policy.policy_version,
    )
    return [o.episode_id for o in outcomes]


def make_policy(tokenizer: Any, model: Any, version: int = 0) -> TokenPolicy:
    generator = TransformersGenerator(model, seed=1, weights_version=version)
    return TokenPolicy(
        tokenizer, generator, sampling=SamplingParams(max_tokens=6, temperature=1.0), validate_tools=False,
        policy_version=version,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def recorded(tokenizer: Any) -> list[RecordedEvent]:
    """The events of 2 groups x 4 real episodes at policy version 0."""
    store = MemoryEventStore()

    async def main() -> None:
        await play(store, make_policy(tokenizer, tiny_model(tokenizer)), prefix="r0")

    anyio.run(main)
    return list(store.read())


def copy_into(store: EventStore, records: Sequence[RecordedEvent]) -> None:
    """Append recorded events, stream by stream, into another store (positions are reassigned)."""
    from sentinel_async.events import NewEvent

    for record in records:
        new = NewEvent(payload=record.payload, event_id=record.event_id, causation_id=record.causation_id)
        store.commit_sync([StreamAppend(stream_id=record.stream_id, events=[new])])


@pytest.fixture
def store(recorded: list[RecordedEvent]) -> MemoryEventStore:
    s = MemoryEventStore()
    copy_into(s, recorded)
    return s


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


@pytest.fixture
def new_model(tokenizer: Any) -> Callable[[], Any]:
    """Builds the same tiny random model each call."""
    return lambda: tiny_model(tokenizer)


@pytest.fixture
def fill(recorded: list[RecordedEvent]) -> Callable[[EventStore], None]:
    """Copies the recorded episodes into a store."""
    return lambda store: copy_into(store, recorded)


@pytest.fixture
def new_policy(tokenizer: Any) -> Callable[[], TokenPolicy]:
    """A TokenPolicy over an in-process generator of a fresh tiny model (version 0)."""
    return lambda: make_policy(tokenizer, tiny_model(tokenizer))
