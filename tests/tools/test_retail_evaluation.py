"""Our retail reward equals tau2's own evaluators on gold trajectories and on perturbations (no mocks)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import GoldAction, TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import (
    Evaluator,
    communicate_check,
    score_with_tau2,
    simulation_run_json,
    to_simulation_run,
    to_tau2_messages,
)
from sentinel_async.tools.tau2_compat import tau2_evaluation, tau2_messages

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")

Action = tuple[str, dict[str, Any]]


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="module")
def evaluator(domain: RetailDomain) -> Evaluator:
    return Evaluator(domain)


def play(domain: RetailDomain, actions: list[Action], infos: list[str]) -> list[ChatMessage]:
    """A trajectory: greeting, request, each action with its real tool result, the facts, a user stop."""
    env = domain.new_environment()
    messages = [
        ChatMessage(role="assistant", content="Hi! How can I help you today?"),
        ChatMessage(role="user", content="I need help with my orders."),
    ]
    for index, (name, arguments) in enumerate(actions):
        call = ToolCall(id=f"call_{index}", name=name, arguments=arguments)
        outcome = env.call(call)
        messages.append(ChatMessage(role="assistant", tool_calls=(call,)))
        messages.append(ChatMessage(role="tool", content=outcome.content, tool_call_id=call.id, error=outcome.error))
    if infos:
        messages.append(ChatMessage(role="assistant", content="To sum up: " + "; ".join(infos) + "."))
    messages.append(ChatMessage(role="user", content="###STOP###"))
    return messages


def gold(task: TaskSpec) -> list[Action]:
    return [(a.name, dict(a.arguments)) for a in task.gold_actions]


@pytest.mark.slow
def test_all_gold_trajectories_score_one_in_both(domain: RetailDomain, evaluator: Evaluator) -> None:
    for task in domain.tasks("base"):
        messages = play(domain, gold(task), task.communicate_info)
        ours = evaluator.evaluate(task, messages, "user_stop")
        assert ours.reward == 1.0, (task.id, ours)
        assert ours.replay_mismatches == 0
        assert ours.reward_basis == ("DB", "COMMUNICATE")
        assert score_with_tau2(task, messages, "user_stop").reward == 1.0, task.id


def _first(domain: RetailDomain, tool: str, accept: Callable[[GoldAction], bool] = lambda _: True) -> TaskSpec:
    return next(t for t in domain.tasks() if any(a.name == tool and accept(a) for a in t.gold_actions))


def wrong_item(domain: RetailDomain) -> tuple[TaskSpec, list[Action]]:
    """A return of another item of the same order: the call succeeds, the database differs."""

    def has_other_item(action: GoldAction) -> bool:
        items = {i.item_id for i in domain.orders[action.arguments["order_id"]].items}
        return bool(items - set(action.arguments["item_ids"]))

    task = _first(domain, "return_delivered_order_items", has_other_item)
    actions = gold(task)
    for name, arguments in actions:
        if name == "return_delivered_order_items" and has_other_item(
            GoldAction(action_id="", name=name, arguments=arguments)
        ):
            items = [i.item_id for i in domain.orders[arguments["order_id"]].items]
            arguments["item_ids"] = [
                next(i for i in items if i not in arguments["item_ids"]),
                *arguments["item_ids"][1:],
            ]
            break
    return task, actions


def missing_write(domain: RetailDomain) -> tuple[TaskSpec, list[Action]]:
    task = _first(domain, "cancel_pending_order")
    actions = gold(task)
    last_write = max(i for i, (name, _) in enumerate(actions) if domain.is_write_tool(name))
    return task, actions[:last_write] + actions[last_write + 1 :]


def extra_write(domain: RetailDomain) -> tuple[TaskSpec, list[Action]]:
    task = _first(domain, "cancel_pending_order")
    touched = {a.arguments.get("order_id") for a in task.gold_actions}
    other = next(o for o, order in domain.orders.items() if order.status == "pending" and o not in touched)
    return task, [*gold(task), ("cancel_pending_order", {"order_id": other, "reason": "ordered by mistake"})]


def wrong_reason(domain: RetailDomain) -> tuple[TaskSpec, list[Action]]:
    task = _first(domain, "cancel_pending_order")
    swap = {"no longer needed": "ordered by mistake", "ordered by mistake": "no longer needed"}
    actions = [
        (n, {**a, "reason": swap[a["reason"]]}) if n == "cancel_pending_order" else (n, a) for n, a in gold(task)
    ]
    return task, actions


def reversed_items(domain: RetailDomain) -> tuple[TaskSpec, list[Action]]:
    """tau2's known order dependence: modify_pending_order_items prices every item as the last variant."""
    task = domain.task("20")
    actions = [
        (n, {**a, "item_ids": a["item_ids"][::-1], "new_item_ids": a["new_item_ids"][::-1]})
        if n == "modify_pending_order_items"
        else (n, a)
        for n, a in gold(task)
    ]
    return task, actions


@pytest.mark.parametrize(
    "perturb", [wrong_item, missing_write, extra_write, wrong_reason, reversed_items], ids=lambda f: f.__name__
)
def test_db_perturbations_score_zero_in_both(
    domain: RetailDomain, evaluator: Evaluator, perturb: Callable[[RetailDomain], tuple[TaskSpec, list[Action]]]
) -> None:
    task, actions = perturb(domain)
    assert actions != gold(task)
    messages = play(domain, actions, task.communicate_info)
    ours = evaluator.evaluate(task, messages, "agent_stop")
    theirs = score_with_tau2(task, messages, "agent_stop")
    assert ours.reward == theirs.reward == 0.0
    assert ours.db == 0.0
    assert theirs.db_match is False
    assert ours.communicate == 1.0


def test_missing_fact_scores_zero_in_both(domain: RetailDomain, evaluator: Evaluator) -> None:
    task = next(t for t in domain.tasks() if len(t.communicate_info) >= 1)
    infos = task.communicate_info[1:]
    messages = play(domain, gold(task), infos)
    ours = evaluator.evaluate(task, messages, "user_stop")
    assert ours.reward == score_with_tau2(task, messages, "user_stop").reward == 0.0
    assert ours.db == 1.0
    assert ours.missing_info == (task.communicate_info[0],)


@pytest.mark.parametrize("reason", ["max_steps", "too_many_errors", "agent_error", "user_error", "judge_stop"])
def test_premature_stop_scores_zero_in_both(domain: RetailDomain, evaluator: Evaluator, reason: str) -> None:
    task = domain.task("5")
    messages = play(domain, gold(task), task.communicate_info)
    ours = evaluator.evaluate(task, messages, reason)
    assert ours.reward == score_with_tau2(task, messages, reason).reward == 0.0
    assert not ours.terminated_ok
    assert ours.reward_basis == ()


def test_communicate_rule_matches_tau2() -> None:
    said = [ChatMessage(role="assistant", content="Your refund is $1,234.50 to PayPal."), ChatMessage(role="user")]
    assert communicate_check(said, ["1234.50", "paypal"]) == ()
    assert communicate_check(said, ["1,234.50"]) == ("1,234.50",)  # commas are stripped from the message only
    assert communicate_check([ChatMessage(role="user", content="1234.50")], ["1234.50"]) == ("1234.50",)


def test_replay_mismatch_is_counted_and_tau2_raises(domain: RetailDomain, evaluator: Evaluator) -> None:
    task = domain.task("5")
    messages = play(domain, gold(task), [])
    index = next(i for i, m in enumerate(messages) if m.role == "tool")
    messages[index] = msgspec.structs.replace(messages[index], content='{"forged": true}')
    assert evaluator.evaluate(task, messages, "user_stop").replay_mismatches == 1
    with pytest.raises(ValueError, match="Tool call"):
        score_with_tau2(task, messages, "user_stop")


def test_gold_fingerprint_is_cached(domain: RetailDomain) -> None:
    evaluator = Evaluator(domain)
    task = domain.task("0")
    first = evaluator.gold_fingerprint(task)
    assert evaluator.gold_fingerprint(task) is first
    assert task.evaluation_criteria is not None
    changed = msgspec.structs.replace(
        task, evaluation_criteria=msgspec.structs.replace(task.evaluation_criteria, actions=[])
    )
    assert evaluator.gold_fingerprint(changed) == {}


def test_action_basis_when_requested(domain: RetailDomain, evaluator: Evaluator) -> None:
    task = domain.task("5")
    criteria = task.evaluation_criteria
    assert criteria is not None
    with_action = msgspec.structs.replace(
        task, evaluation_criteria=msgspec.structs.replace(criteria, reward_basis=["DB", "ACTION"])
    )
    messages = play(domain, gold(task)[1:], [])  # skips a read: DB still matches, ACTION does not
    ours = evaluator.evaluate(with_action, messages, "user_stop")
    assert (ours.db, ours.action, ours.reward) == (1.0, 0.0, 0.0)
    assert ours.reward == score_with_tau2(with_action, messages, "user_stop").reward


def test_conversion_to_tau2_messages(domain: RetailDomain) -> None:
    task = domain.task("5")
    messages = [ChatMessage(role="system", content="policy"), *play(domain, gold(task), ["x"])]
    converted = to_tau2_messages(messages)
    api = tau2_messages()
    assert len(converted) == len(messages) - 1
    assert [m.turn_idx for m in converted] == list(range(len(converted)))
    assert [m.timestamp for m in converted] == sorted(m.timestamp for m in converted)
    assert isinstance(converted[0], api.assistant)
    assert converted[0].tool_calls is None
    assert isinstance(converted[1], api.user)
    call, result = converted[2], converted[3]
    assert call.content is None
    assert call.tool_calls[0].name == gold(task)[0][0]
    assert isinstance(result, api.tool)
    assert result.id == call.tool_calls[0].id
    with pytest.raises(ValueError, match="timestamps"):
        to_tau2_messages(messages, timestamps=[1.0])


def test_simulation_run_export_reads_back_in_tau2(domain: RetailDomain, evaluator: Evaluator) -> None:
    task = domain.task("5")
    messages = play(domain, gold(task), [])
    reward = evaluator.evaluate(task, messages, "user_stop")
    text = simulation_run_json(task, messages, "user_stop", reward=reward, run_id="run-1", trial=0)
    run = tau2_evaluation().simulation_run.model_validate_json(text)
    assert run.id == "run-1"
    assert run.task_id == "5"
    assert run.trial == 0
    assert run.termination_reason.value == "user_stop"
    assert run.reward_info.reward == 1.0
    assert run.reward_info.db_check.db_match
    assert len(run.messages) == len(messages)
    assert json.loads(text)["messages"][2]["tool_calls"][0]["name"] == gold(task)[0][0]
    failed = to_simulation_run(task, messages, "max_steps", reward=evaluator.evaluate(task, messages, "max_steps"))
    assert failed.reward_info.reward == 0.0
    environment = tau2_evaluation().environment_evaluator
    from sentinel_async.tools.retail.tasks import task_to_tau2
    from sentinel_async.tools.tau2_compat import tau2_retail

    info = environment.calculate_reward(
        environment_constructor=tau2_retail().get_environment, task=task_to_tau2(task), full_trajectory=run.messages
    )
    assert info.reward == 1.0


def test_progress_is_the_share_of_gold_actions_matched_and_never_the_reward(
    domain: RetailDomain, evaluator: Evaluator
) -> None:
    task, actions = missing_write(domain)
    total = len(task.gold_actions)
    messages = play(domain, actions, task.communicate_info)
    partial = evaluator.evaluate(task, messages, "agent_stop")
    assert partial.reward == 0.0
    assert partial.progress == pytest.approx((total - 1) / total)
    cut_short = evaluator.evaluate(task, messages, "too_many_errors")
    assert cut_short.progress == partial.progress, "an episode that ran out of errors still shows how far it got"
    full = play(domain, gold(task), task.communicate_info)
    assert evaluator.evaluate(task, full, "agent_stop").progress == 1.0
