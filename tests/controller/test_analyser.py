"""The deterministic analyser: each category on realistic retail failures, with the right turn and evidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from sentinel_async.agents.controller import DeterministicAnalyser, Diagnosis, FailureCategory, subkey_of
from sentinel_async.agents.episode import INVALID_TOOL_CALL, EpisodeRunner
from sentinel_async.agents.scripted import (
    MalformedCallExpert,
    NoConfirmationExpert,
    PrematureStopExpert,
    ScriptedUser,
    SkipsWriteExpert,
    WrongItemExpert,
    derive_user_script,
)
from sentinel_async.agents.scripted.faulty import FaultyExpert
from sentinel_async.events import EpisodeFinished
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator
from tests.controller.retail_episodes import CONFIRM, YES, Played, Step, gold_steps, play

C = FailureCategory
ANALYSER = DeterministicAnalyser()


def diagnose(domain: RetailDomain, task: TaskSpec, played: Played) -> Diagnosis:
    assert played.finished.reward < 1.0, "the hand-built episode must fail"
    return ANALYSER.analyse(task, played.messages, played.finished, domain)


def write_index(task: TaskSpec, domain: RetailDomain, nth: int = 0) -> int:
    return [i for i, a in enumerate(task.gold_actions) if domain.is_write_tool(a.name)][nth]


def gold_args(task: TaskSpec, index: int, **changes: Any) -> dict[str, Any]:
    return {**task.gold_actions[index].arguments, **changes}


def confirmed(name: str, arguments: dict[str, Any]) -> list[Step]:
    return [("say", CONFIRM), ("user", YES), ("call", name, arguments)]


def other_order(domain: RetailDomain, user_id: str, exclude: str, status: str) -> str:
    return str(next(o for o in domain.users[user_id].orders if o != exclude and domain.orders[o].status == status))


# --- faulty experts (the whole runner, the ScriptedUser and the real reward) ---------------------------------


@pytest.mark.parametrize(
    ("make", "category", "subkey"),
    [
        (WrongItemExpert, C.WRONG_ITEM, "exchange_delivered_order_items"),
        (NoConfirmationExpert, C.NO_CONFIRMATION, None),
        (SkipsWriteExpert, C.MISSING_WRITE, "exchange_delivered_order_items"),
        (PrematureStopExpert, C.PREMATURE_STOP, None),
        (MalformedCallExpert, C.PROTOCOL_ERROR, "unknown_tool"),
        (lambda t, d: MalformedCallExpert(t, d, mode="bad_arguments"), C.PROTOCOL_ERROR, "bad_arguments"),
    ],
)
async def test_faulty_experts_are_diagnosed(
    domain: RetailDomain, tasks: dict[str, TaskSpec], make: Any, category: C, subkey: str | None
) -> None:
    task = tasks["4"] if make is NoConfirmationExpert else tasks["0"]
    expert: FaultyExpert = make(task, domain)
    runner = EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)
    user = ScriptedUser(derive_user_script(task, domain))
    outcome = await runner.run(task=task, policy=expert, user=user, episode_id="faulty", seed=0)
    assert outcome.reward is not None
    assert not outcome.reward.success
    reward = outcome.reward
    finished = EpisodeFinished(
        episode_id="faulty",
        task_id=task.id,
        termination=outcome.termination,
        reward=reward.reward,
        breakdown={"db": reward.db or 0.0, "communicate": reward.communicate or 0.0},
    )
    diagnosis = ANALYSER.analyse(task, outcome.messages, finished, domain)
    assert diagnosis.category == category, diagnosis.summary
    assert diagnosis.evidence[0].episode_id == "faulty"
    if subkey is not None:
        assert subkey_of(diagnosis.evidence) == subkey
    # The deciding turn is where the fault fired: the index of the faulty message in the conversation.
    fault = expert.fault_step
    assert fault is not None
    turn = diagnosis.evidence[0].turn
    assert turn is not None
    assert outcome.messages[turn].role == "assistant"


# --- write deviations -------------------------------------------------------------------------------------------


def test_wrong_order(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["17"]  # change the address of pending order #W8665881; the user has another pending order
    i = write_index(task, domain)
    order = task.gold_actions[i].arguments["order_id"]
    wrong = other_order(domain, domain.orders[order].user_id, order, "pending")
    replaced = confirmed("modify_pending_order_address", gold_args(task, i, order_id=wrong))
    diagnosis = diagnose(domain, task, play(domain, task, gold_steps(task, domain, replace={i: replaced})))
    assert diagnosis.category == C.WRONG_ORDER
    assert wrong in (diagnosis.evidence[0].actual or "")
    assert order in (diagnosis.evidence[0].expected or "")


def test_wrong_reason(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["38"]
    i = write_index(task, domain)
    steps = gold_steps(
        task, domain, replace={i: confirmed("cancel_pending_order", gold_args(task, i, reason="ordered by mistake"))}
    )
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.WRONG_REASON
    assert subkey_of(diagnosis.evidence) == "cancel_pending_order"


def test_missing_items(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["2"]  # return three items of #W2378156
    i = write_index(task, domain)
    items = task.gold_actions[i].arguments["item_ids"]
    replaced = confirmed("return_delivered_order_items", gold_args(task, i, item_ids=items[:2]))
    played = play(domain, task, gold_steps(task, domain, replace={i: replaced}, say="Your refund is 10."))
    diagnosis = diagnose(domain, task, played)
    assert diagnosis.category == C.MISSING_ITEMS
    assert items[2] in diagnosis.summary
    assert played.messages[diagnosis.evidence[0].turn or 0].tool_calls[0].name == "return_delivered_order_items"


def test_wrong_item_sequence(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["20"]  # the DB depends on the order of the items of modify_pending_order_items
    i = write_index(task, domain)
    args = task.gold_actions[i].arguments
    reordered = gold_args(task, i, item_ids=args["item_ids"][::-1], new_item_ids=args["new_item_ids"][::-1])
    steps = gold_steps(task, domain, replace={i: confirmed("modify_pending_order_items", reordered)})
    assert diagnose(domain, task, play(domain, task, steps)).category == C.WRONG_ITEM_SEQUENCE


def test_wrong_address(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["17"]
    i = write_index(task, domain)
    steps = gold_steps(
        task, domain, replace={i: confirmed("modify_pending_order_address", gold_args(task, i, zip="78713"))}
    )
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.WRONG_ADDRESS
    assert "78713" in diagnosis.summary
    assert "78712" in diagnosis.summary


def test_wrong_payment(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["40"]  # modify the payment of #W4923227
    i = write_index(task, domain)
    order = domain.orders[task.gold_actions[i].arguments["order_id"]]
    current = order.payment_history[0].payment_method_id
    gold_method = task.gold_actions[i].arguments["payment_method_id"]
    methods = domain.users[order.user_id].payment_methods
    other = next(m for m in methods if m not in (current, gold_method) and not m.startswith("gift_card"))
    steps = gold_steps(
        task,
        domain,
        replace={i: confirmed("modify_pending_order_payment", gold_args(task, i, payment_method_id=other))},
    )
    diagnosis = diagnose(domain, task, play(domain, task, steps, termination="agent_stop"))
    assert diagnosis.category == C.WRONG_PAYMENT


def test_a_declined_confirmation_with_a_wrong_value_is_the_deviation(
    domain: RetailDomain, tasks: dict[str, TaskSpec]
) -> None:
    """A small policy's usual late failure: the refund confirmed to the right digits under the wrong kind of
    payment method, the customer declines, the write never happens. The diagnosis is the proposal, not a
    missing write, and it names the tool, so the Proposer aims at the right request."""
    task = tasks["5"]  # return one item of #W6390527, refund to paypal_7644869
    i = write_index(task, domain)
    proposal = (
        "I will return items 8538875209 of delivered order #W6390527, refund to credit_card_7644869. "
        "Do you confirm (yes/no)?"
    )
    steps = gold_steps(
        task,
        domain,
        replace={
            i: [
                ("say", proposal),
                ("user", "No, the refund should go to my PayPal account (paypal_7644869)."),
                ("say", proposal),
                ("user", "No. Forget it. ###STOP###"),
            ]
        },
        stop=False,
    )
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.WRONG_PAYMENT
    first = diagnosis.evidence[0]
    assert (first.expected or "").startswith("return_delivered_order_items(")
    assert 'payment_method_id="credit_card_7644869"' in (first.actual or "")
    assert subkey_of(diagnosis.evidence) == "return_delivered_order_items"
    assert first.turn is not None
    assert all(e.turn is None or first.turn <= e.turn for e in diagnosis.evidence), "the earliest deviation decides"


def test_a_declined_confirmation_naming_the_gold_values_is_no_deviation(
    domain: RetailDomain, tasks: dict[str, TaskSpec]
) -> None:
    """The customer may decline a right proposal (and end): that is not read as a wrong value."""
    task = tasks["5"]
    i = write_index(task, domain)
    proposal = (
        "I will return items 8538875209 of delivered order #W6390527, refund to paypal_7644869. "
        "Do you confirm (yes/no)?"
    )
    steps = gold_steps(task, domain, replace={i: [("say", proposal), ("user", "No. ###STOP###")]}, stop=False)
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category not in (C.WRONG_PAYMENT, C.WRONG_ITEM, C.WRONG_ORDER)


def test_wrong_action_return_instead_of_exchange(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["6"]  # exchange an item of #W6390527
    i = write_index(task, domain)
    args = {k: v for k, v in task.gold_actions[i].arguments.items() if k != "new_item_ids"}
    steps = gold_steps(task, domain, replace={i: confirmed("return_delivered_order_items", args)})
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.WRONG_ACTION
    assert (diagnosis.evidence[0].expected or "").startswith("exchange_delivered_order_items(")


def test_extra_write(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]  # return one item of #W6390527 (user mei_kovacs_8020)
    pending = other_order(domain, "mei_kovacs_8020", "#W6390527", "pending")
    extra = confirmed("cancel_pending_order", {"order_id": pending, "reason": "no longer needed"})
    steps = gold_steps(task, domain, stop=False) + extra + [("user", "Thanks! ###STOP###")]
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.EXTRA_WRITE
    assert diagnosis.evidence[0].actual is not None
    assert pending in diagnosis.evidence[0].actual


# --- explanations of missing writes -----------------------------------------------------------------------------


def test_policy_violation_cancel_of_delivered_order(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    i = write_index(task, domain)
    attempt = confirmed("cancel_pending_order", {"order_id": "#W6390527", "reason": "no longer needed"})
    diagnosis = diagnose(domain, task, play(domain, task, gold_steps(task, domain, replace={i: attempt})))
    assert diagnosis.category == C.POLICY_VIOLATION
    assert "delivered" in diagnosis.summary
    assert "pending" in diagnosis.summary
    assert "Error" in (diagnosis.evidence[0].actual or "")


def test_missing_authentication(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    steps: list[Step] = [
        ("user", "I want to return a lamp from order #W6390527."),
        ("call", "get_order_details", {"order_id": "#W6390527"}),
        ("say", "I cannot do this for you, sorry. ###STOP###"),
    ]
    diagnosis = diagnose(domain, task, play(domain, task, steps, termination="agent_stop"))
    assert diagnosis.category == C.MISSING_AUTHENTICATION
    assert any((e.actual or "").startswith("get_order_details(") for e in diagnosis.evidence)


def test_missing_authentication_shows_the_lookup_that_failed(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    """A small policy's usual way to fail authentication: the name miscopied, so the lookup finds no one."""
    task = tasks["5"]
    miscopied = {"first_name": "Lei", "last_name": "Kim", "zip": "28236"}
    steps: list[Step] = [
        ("user", "I want to return a lamp. I am Mei Kovacs, zip code 28236."),
        ("call", "find_user_id_by_name_zip", miscopied),
        ("say", "I cannot find you, sorry. ###STOP###"),
    ]
    diagnosis = diagnose(domain, task, play(domain, task, steps, termination="agent_stop"))
    assert diagnosis.category == C.MISSING_AUTHENTICATION
    actual = diagnosis.evidence[0].actual or ""
    assert actual.startswith('one failed lookup: find_user_id_by_name_zip(first_name="Lei", last_name="Kim"')
    assert actual.endswith("-> Error: User not found")


def test_missing_lookup(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    auth = task.gold_actions[0]
    steps: list[Step] = [
        ("user", "I want to return something."),
        ("call", auth.name, dict(auth.arguments)),
        ("say", "Thank you, you are verified. Is there anything else?"),
        ("user", "Forget it. ###STOP###"),
    ]
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.MISSING_LOOKUP
    assert (diagnosis.evidence[0].expected or "").startswith(("get_user_details(", "get_order_details("))


def test_premature_transfer(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    i = write_index(task, domain)
    transfer: list[Step] = [("call", "transfer_to_human_agents", {"summary": "wants a return"})]
    steps = [*gold_steps(task, domain, replace={i: transfer}, stop=False), ("user", "###TRANSFER###")]
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.PREMATURE_TRANSFER


def test_unparsable_output_is_a_protocol_error(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    i = write_index(task, domain)
    steps = gold_steps(task, domain, replace={i: [("say", CONFIRM), ("user", YES), ("call", INVALID_TOOL_CALL, {})]})
    played = play(domain, task, steps, termination="agent_stop")
    diagnosis = diagnose(domain, task, played)
    assert diagnosis.category == C.PROTOCOL_ERROR
    assert subkey_of(diagnosis.evidence) == "unparsable"
    answer = next(m.content for m in played.messages if m.role == "tool" and m.name == INVALID_TOOL_CALL)
    assert diagnosis.evidence[0].actual == f"unparsable: {answer}"  # what the parser said was wrong


# --- the end of the episode and the information ----------------------------------------------------------------


def test_wrong_information(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["33"]  # an address change, and the user must hear "1093.34"
    diagnosis = diagnose(domain, task, play(domain, task, gold_steps(task, domain, say="Total: 1000.")))
    assert diagnosis.category == C.WRONG_INFORMATION
    assert "1093.34" in (diagnosis.evidence[0].expected or "")
    assert "Total: 1000" in (diagnosis.evidence[0].actual or "")


@pytest.mark.parametrize(
    ("termination", "category"), [("max_steps", C.MAX_STEPS), ("too_many_errors", C.TOO_MANY_ERRORS)]
)
def test_limits(domain: RetailDomain, tasks: dict[str, TaskSpec], termination: str, category: C) -> None:
    task = tasks["5"]
    steps = gold_steps(task, domain)[:4]  # stopped before the write
    diagnosis = diagnose(domain, task, play(domain, task, steps, termination=termination))
    assert diagnosis.category == category


def test_system_error(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    diagnosis = diagnose(domain, task, play(domain, task, gold_steps(task, domain)[:3], termination="agent_error"))
    assert diagnosis.category == C.SYSTEM_ERROR


def test_style_violations_are_secondary_evidence(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["5"]
    i = write_index(task, domain)
    auth = task.gold_actions[0]
    both: list[Step] = [("calls", [(auth.name, dict(auth.arguments)), ("list_all_product_types", {})], "Let me check.")]
    steps = gold_steps(task, domain, replace={0: both, i: []})
    diagnosis = diagnose(domain, task, play(domain, task, steps))
    assert diagnosis.category == C.MISSING_WRITE
    kinds = {(e.actual or "").split(":")[0] for e in diagnosis.evidence}
    assert {"text_with_call", "several_calls"} <= kinds


def test_deterministic_and_json_round_trip(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["17"]
    i = write_index(task, domain)
    steps = gold_steps(
        task, domain, replace={i: confirmed("modify_pending_order_address", gold_args(task, i, zip="1"))}
    )
    played = play(domain, task, steps)
    first, second = diagnose(domain, task, played), diagnose(domain, task, played)
    assert first == second
    assert msgspec.json.decode(msgspec.json.encode(first), type=Diagnosis) == first
    event = first.to_event(task.id, played.finished.episode_id)
    assert event.category == "wrong_address"
    assert event.analyser == "deterministic"


def test_custom_turns(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    task = tasks["38"]
    i = write_index(task, domain)
    steps = gold_steps(task, domain, replace={i: confirmed("cancel_pending_order", gold_args(task, i, reason="x"))})
    played = play(domain, task, steps)
    turns: Sequence[int] = [100 + n for n in range(len(played.messages))]
    diagnosis = ANALYSER.analyse(task, played.messages, played.finished, domain, turns=turns)
    assert diagnosis.evidence[0].turn is not None
    assert diagnosis.evidence[0].turn >= 100
