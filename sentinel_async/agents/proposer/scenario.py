"""Writing a verified draft as a task: tau2 user instructions in plain language, the scripted user's fields,
the evaluation criteria and a purpose naming the pattern. Ids are deterministic: `gen-<signature prefix>`."""

from __future__ import annotations

import re

import msgspec

from sentinel_async.agents.proposer.generators import Draft, Targeting
from sentinel_async.agents.scripted.user_script import Intent, UserScript
from sentinel_async.tools.base import EvaluationCriteria, TaskDescription, TaskSpec, UserInstructions, UserScenario

_SECOND_PERSON = (
    (r"\bI am\b", "you are"),
    (r"\bI'm\b", "you're"),
    (r"\bmy\b", "your"),
    (r"\bme\b", "you"),
    (r"\bI\b", "you"),
)


def task_id_for(signature: str) -> str:
    """The deterministic id of a generated task."""
    return f"gen-{signature[:16]}"


def second_person(text: str) -> str:
    """'I want my refund' -> 'You want your refund'."""
    out = text.strip()
    for pattern, repl in _SECOND_PERSON:
        out = re.sub(pattern, repl, out)
    return out[:1].upper() + out[1:]


def _items(intent: Intent) -> str:
    return "; ".join(item.describe() for item in intent.items)


def _order(intent: Intent, t: Targeting, status: str) -> str:
    if t.unknown_order:
        return f"your {status} order with the {_items(intent)} (you do not remember its order id)"
    return f"your {status} order {intent.order_id}"


def intent_sentence(intent: Intent, t: Targeting) -> str:
    """One intent as a sentence of `reason_for_call`."""
    paying = second_person(intent.payment.describe()) if intent.payment else "Your original payment method"
    paying = paying[:1].lower() + paying[1:]
    if intent.kind == "cancel":
        return f"You want to cancel {_order(intent, t, 'pending')} because it is {intent.reason}."
    if intent.kind in ("modify_items", "exchange"):
        swaps = "; ".join(
            f"{old.describe()} to {new.describe()}" for old, new in zip(intent.items, intent.new_items, strict=True)
        )
        verb, status = ("change", "pending") if intent.kind == "modify_items" else ("exchange", "delivered")
        many = " (all of them in one request, in this order)" if len(intent.items) > 1 else ""
        where = _order(intent, t, status)
        return f"In {where}, you want to {verb}{many}: {swaps}. Any price difference goes through {paying}."
    if intent.kind == "return":
        return f"You want to return the {_items(intent)} from {_order(intent, t, 'delivered')}, refunded to {paying}."
    if intent.kind == "modify_address":
        assert intent.address is not None
        return (
            f"You want the shipping address of {_order(intent, t, 'pending')} changed to {intent.address.describe()}."
        )
    if intent.kind == "modify_payment":
        return f"You want to pay for {_order(intent, t, 'pending')} with {paying} instead."
    if intent.kind == "modify_user_address":
        assert intent.address is not None
        return f"You moved, and want the default address of your account changed to {intent.address.describe()}."
    if intent.kind == "transfer":
        return f"{second_person(intent.request or '')}. If the agent cannot do it, you ask for a human agent."
    return second_person(intent.question or "You have a question about your account.")


def instructions(script: UserScript, t: Targeting, *, write_count: int) -> UserInstructions:
    """tau2's structured user instructions for a scripted customer and its targeting."""
    who = script.identity
    reason = " ".join(intent_sentence(intent, t) for intent in script.intents)
    if who.method == "email":
        known = f"You are {who.first_name} {who.last_name}. Your email is {who.email}."
        unknown = None
    else:
        known = f"You are {who.first_name} {who.last_name}, and your zip code is {who.zip}."
        unknown = "You do not remember your email address."
    if t.give_user_id:
        known += f" Your user id is {who.user_id}."
    if t.unknown_order:
        unknown = " ".join(filter(None, [unknown, "You do not know your order ids."]))
    rules = [
        "You are a customer talking to a retail support agent; give the details of each request when asked.",
        "Agree to an action only when the agent lists details that match what you want; then say yes explicitly.",
    ]
    if t.give_user_id:
        rules.append("Start by giving your user id and say it should be enough; give other details only if asked.")
    if t.conditional_confirmation and write_count:
        rules.append(
            "Phrase your first request conditionally ('if that works, just do it'); that is not a yes: "
            "confirm explicitly only after the agent has listed the details."
        )
    if t.similar:
        rules.append("Name every item by its product name and all of its options, exactly as given.")
    if any(i.kind == "info" for i in script.intents):
        rules.append("You want the exact figure or status from the agent.")
    if len(script.intents) > 1:
        rules.append("Bring up your requests one after the other, and make sure all of them are handled.")
    return UserInstructions(
        domain="retail",
        reason_for_call=reason,
        known_info=known,
        unknown_info=unknown,
        task_instructions=" ".join(rules),
    )


def write_task(draft: Draft, signature: str, *, purpose: str) -> TaskSpec:
    """The TaskSpec of a draft (id from its signature)."""
    writes = sum(1 for i in draft.script.intents if i.kind not in ("info", "transfer"))
    return TaskSpec(
        id=task_id_for(signature),
        user_scenario=UserScenario(instructions=instructions(draft.script, draft.recipe.targeting, write_count=writes)),
        evaluation_criteria=EvaluationCriteria(
            actions=list(draft.actions), communicate_info=list(draft.communicate_info) or None
        ),
        description=TaskDescription(
            purpose=purpose, notes=f"recipe {draft.recipe.label}; kinds {', '.join(draft.recipe.kinds)}"
        ),
        user_script=msgspec.to_builtins(draft.script),
    )
