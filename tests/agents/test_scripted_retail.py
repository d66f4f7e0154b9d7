"""The scripted expert and scripted user solve every retail task; each faulty expert fails where it applies."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from sentinel_async.agents.episode import EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.scripted import (
    FAULTY_EXPERTS,
    FaultyExpert,
    MalformedCallExpert,
    NoConfirmationExpert,
    ScriptedExpert,
    ScriptedUser,
    UserScript,
    WrongItemExpert,
    derive_user_script,
    proposal_matches,
)
from sentinel_async.agents.scripted.expert import confirmation_text
from sentinel_async.messages import ChatMessage
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator, score_with_tau2

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="module")
def runner(domain: RetailDomain) -> EpisodeRunner:
    return EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)


def play(runner: EpisodeRunner, task: TaskSpec, policy: Any, user: ScriptedUser, seed: int = 0) -> EpisodeOutcome:
    return asyncio.run(runner.run(task=task, policy=policy, user=user, episode_id=f"ep-{task.id}", seed=seed))


@pytest.fixture(scope="module")
def expert_runs(domain: RetailDomain, runner: EpisodeRunner) -> dict[str, EpisodeOutcome]:
    """ScriptedExpert + ScriptedUser on all 114 tasks, once per module."""
    runs = {}
    for task in domain.tasks("base"):
        script = derive_user_script(task, domain)
        runs[task.id] = play(runner, task, ScriptedExpert(task, domain, script=script), ScriptedUser(script))
    return runs


def test_expert_solves_every_task(expert_runs: dict[str, EpisodeOutcome]) -> None:
    assert len(expert_runs) == 114
    failed = {
        tid: (o.termination, o.reward) for tid, o in expert_runs.items() if o.reward is None or o.reward.reward != 1.0
    }
    assert failed == {}
    for outcome in expert_runs.values():
        assert outcome.termination == "user_stop"
        assert outcome.tool_errors == 0
        assert outcome.reward is not None
        assert outcome.reward.replay_mismatches == 0


def test_expert_follows_the_protocol(domain: RetailDomain, expert_runs: dict[str, EpisodeOutcome]) -> None:
    for outcome in expert_runs.values():
        messages = outcome.messages
        for index, message in enumerate(messages):
            if message.role != "assistant":
                continue
            assert len(message.tool_calls) <= 1
            assert not (message.tool_calls and message.content)
            for call in message.tool_calls:
                if domain.is_write_tool(call.name):
                    asked, answer = messages[index - 2], messages[index - 1]
                    assert "(yes/no)" in asked.content, outcome.task_id
                    assert answer.content.startswith("Yes"), outcome.task_id
        calls = [c.name for m in messages for c in m.tool_calls]
        assert calls[0] in ("find_user_id_by_email", "find_user_id_by_name_zip")


def test_transfer_tasks_end_with_transfer(domain: RetailDomain, expert_runs: dict[str, EpisodeOutcome]) -> None:
    transfers = [t.id for t in domain.tasks() if derive_user_script(t, domain).ends_with_transfer]
    assert transfers
    for task_id in transfers:
        assert expert_runs[task_id].messages[-1].content == "###TRANSFER###"


@pytest.mark.slow
def test_tau2_scores_every_expert_trajectory_one(domain: RetailDomain, expert_runs: dict[str, EpisodeOutcome]) -> None:
    for task in domain.tasks("base"):
        outcome = expert_runs[task.id]
        assert score_with_tau2(task, outcome.messages, outcome.termination).reward == 1.0, task.id


def test_runs_are_deterministic(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("23")
    script = derive_user_script(task, domain)
    first, second = (play(runner, task, ScriptedExpert(task, domain), ScriptedUser(script, seed=7)) for _ in "ab")
    assert first.messages == second.messages
    other = play(runner, task, ScriptedExpert(task, domain), ScriptedUser(script, seed=8))
    assert other.reward is not None
    assert other.reward.reward == 1.0


def test_script_round_trips_through_the_task(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("41")
    script = derive_user_script(task, domain)
    carried = msgspec.structs.replace(task, user_script=msgspec.to_builtins(script))
    assert derive_user_script(msgspec.json.decode(msgspec.json.encode(carried), type=TaskSpec), domain) == script
    outcome = play(runner, carried, ScriptedExpert(carried, domain), ScriptedUser(script))
    assert outcome.reward is not None
    assert outcome.reward.reward == 1.0


@pytest.mark.parametrize("expert", FAULTY_EXPERTS, ids=lambda e: e.fault)
def test_faulty_expert_scores_zero_where_it_applies(
    domain: RetailDomain, runner: EpisodeRunner, expert: type[FaultyExpert]
) -> None:
    applicable = [t for t in domain.tasks("base") if expert.applies_to(t, domain)]
    assert len(applicable) >= 10
    for task in applicable:
        script = derive_user_script(task, domain)
        outcome = play(runner, task, expert(task, domain), ScriptedUser(script))
        assert outcome.reward is not None
        assert outcome.reward.reward == 0.0, (expert.fault, task.id)
        assert outcome.termination in ("user_stop", "agent_stop")


def test_malformed_arguments_mode(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("0")
    outcome = play(
        runner,
        task,
        MalformedCallExpert(task, domain, mode="bad_arguments"),
        ScriptedUser(derive_user_script(task, domain)),
    )
    errors = [m.content for m in outcome.messages if m.role == "tool" and m.error]
    assert len(errors) == 1
    assert "orderId" in errors[0]
    assert outcome.reward is not None
    assert outcome.reward.reward == 0.0


def test_wrong_item_fault_is_in_the_call_only(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("0")
    outcome = play(runner, task, WrongItemExpert(task, domain), ScriptedUser(derive_user_script(task, domain)))
    writes = [c for m in outcome.messages for c in m.tool_calls if c.name == "exchange_delivered_order_items"]
    assert len(writes) == 1
    assert writes[0].arguments["new_item_ids"][0] != "7706410293"
    assert outcome.reward is not None
    assert outcome.reward.db == 0.0
    assert outcome.termination == "user_stop"


def test_no_confirmation_makes_the_user_leave(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("16")
    outcome = play(runner, task, NoConfirmationExpert(task, domain), ScriptedUser(derive_user_script(task, domain)))
    assert "never agreed" in outcome.messages[-1].content
    assert "###STOP###" in outcome.messages[-1].content


# --- the user on its own


def _user(domain: RetailDomain, task_id: str) -> tuple[ScriptedUser, UserScript]:
    script = derive_user_script(domain.task(task_id), domain)
    return ScriptedUser(script), script


def _say(*texts: str) -> list[ChatMessage]:
    roles = ("assistant", "user")
    return [ChatMessage(role=roles[i % 2], content=t) for i, t in enumerate(texts)]  # type: ignore[arg-type]


def test_user_confirms_only_the_exact_proposal(domain: RetailDomain) -> None:
    user, script = _user(domain, "0")
    intent = script.intents[0]
    right = confirmation_text(intent)
    assert proposal_matches(right, intent)
    assert user.reply(_say("Hi!", "...", right)).startswith("Yes")
    wrong = right.replace("backlight: none", "backlight: RGB").replace("7706410293", "9690244451")
    assert not proposal_matches(wrong, intent)
    assert user.reply(_say("Hi!", "...", wrong)).startswith("No")
    other_order = right.replace("#W2378156", "#W6247578")
    assert user.reply(_say("Hi!", "...", other_order)).startswith("No")


def test_user_reveals_identity_and_details_when_asked(domain: RetailDomain) -> None:
    user, script = _user(domain, "10")
    assert script.identity.email in user.reply(_say("Hi!", "...", "Could you give me your email address?"))
    user, script = _user(domain, "17")
    assert "78712" in user.reply(_say("Hi!", "...", "Please provide your name and zip code to verify."))
    reply = user.reply(_say("Hi!", "...", "What is the order id?"))
    assert script.intents[0].order_id is not None
    assert script.intents[0].order_id in reply


class _Stubborn:
    """A policy that never does anything useful."""

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        return PolicyTurn(message=ChatMessage(role="assistant", content="Could you say that again?"))


def test_user_gives_up_after_a_bounded_number_of_turns(domain: RetailDomain, runner: EpisodeRunner) -> None:
    task = domain.task("5")
    outcome = play(runner, task, _Stubborn(), ScriptedUser(derive_user_script(task, domain)))
    assert outcome.termination == "user_stop"
    assert sum(m.role == "user" for m in outcome.messages) <= 11


def test_user_accepts_free_phrasing_and_refuses_extra_items(domain: RetailDomain) -> None:
    user, script = _user(domain, "0")
    intent = script.intents[0]
    llm_style = (
        "To confirm: in order #W2378156 I'll exchange your Mechanical Keyboard for item 7706410293 (clicky, "
        "backlight none) and your Smart Thermostat for the Google Assistant one (item 7747408585), with the "
        "difference charged to your Mastercard ending in 2478. Shall I proceed?"
    )
    assert proposal_matches(llm_style, intent)
    assert user.reply(_say("Hi!", "...", llm_style)).startswith("Yes")
    greedy = llm_style.replace("Shall I proceed?", "I'll also exchange your Headphones. Shall I proceed?")
    assert not proposal_matches(greedy, intent)
