"""An expert demonstrator for retail: replays a task's gold actions the way a careful agent would.

It authenticates first, runs the gold reads one call per turn, lists every write's details and asks for an
explicit yes before it, reports the outcome, says every `communicate_info` string verbatim, and transfers when
the gold says so. Gold calls that fail on replay are left out (they change nothing). It has privileged access
to the gold actions; the plan is fixed when the expert is built, so use one expert per episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.scripted.user_script import (
    LOOKUP_TOOLS,
    Intent,
    UserScript,
    derive_user_script,
    intent_from_call,
)
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain

TRANSFER_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
ANYTHING_ELSE = "Is there anything else I can help you with?"
STOP = "###STOP###"


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One planned assistant turn: a message to the user, a tool call, or a write's confirmation request."""

    kind: Literal["say", "call", "confirm"]
    text: str = ""
    call: ToolCall | None = None
    write_index: int | None = None  # which write (0-based, in gold order) a confirm / call / outcome belongs to


def confirmation_text(intent: Intent) -> str:
    """The write's details, listed for the user, and the request for an explicit yes."""
    order = intent.order_id
    pay = intent.payment
    payment = ""
    if pay is not None:
        card = f" ({pay.brand} ending in {pay.last_four})" if pay.source == "credit_card" else ""
        payment = f" Payment method: {pay.payment_method_id}{card}."
    items = "; ".join(f"{it.describe()}, item id {it.item_id}" for it in intent.items)
    if intent.kind == "cancel":
        body = f"cancel order {order} (items: {items}) with the reason '{intent.reason}'."
    elif intent.kind == "return":
        body = f"return the following items of delivered order {order}: {items}. The refund goes to the payment method."
    elif intent.kind in ("exchange", "modify_items"):
        swaps = "; ".join(
            f"{old.describe()} (item id {old.item_id}) -> {new.describe()} (item id {new.item_id})"
            for old, new in zip(intent.items, intent.new_items, strict=True)
        )
        verb = (
            "exchange these items of delivered order"
            if intent.kind == "exchange"
            else "modify these items of pending order"
        )
        body = f"{verb} {order}: {swaps}. Any price difference is settled with the payment method."
    elif intent.kind == "modify_address":
        assert intent.address is not None
        body = f"change the shipping address of pending order {order} to {intent.address.describe()}."
    elif intent.kind == "modify_payment":
        body = f"change the payment method of pending order {order}."
    else:
        assert intent.address is not None
        body = f"update the default address of your user profile to {intent.address.describe()}."
    return f"Here are the details of the action. I will {body}{payment} Do you confirm (yes/no)?"


def outcome_text(intent: Intent) -> str:
    """What the expert tells the user after a successful write."""
    done = {
        "cancel": f"Your order {intent.order_id} has been cancelled.",
        "return": f"The return for order {intent.order_id} has been requested; the return label is sent by email.",
        "exchange": f"The exchange for order {intent.order_id} has been requested.",
        "modify_items": f"The items of order {intent.order_id} have been modified.",
        "modify_address": f"The shipping address of order {intent.order_id} has been updated.",
        "modify_payment": f"The payment method of order {intent.order_id} has been updated.",
        "modify_user_address": "Your default address has been updated.",
    }
    return done.get(intent.kind, "Done.")


def is_yes(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith("yes") or lowered.startswith("y ") or lowered in {"y", "ok", "okay", "sure"}


class ScriptedExpert:
    """A `Policy` that replays the gold actions of one task with a careful agent's protocol."""

    confirm_writes = True
    """Ask for an explicit yes before each write (the faulty `NoConfirmationExpert` does not)."""

    def __init__(self, task: TaskSpec, domain: RetailDomain, *, script: UserScript | None = None) -> None:
        self.task = task
        self.domain = domain
        self.script = script or derive_user_script(task, domain)
        self.intents: list[Intent] = []
        self.plan: list[Step] = self.build_plan()
        self._cursor = 0
        self._seen = 0
        self._apologies = 0

    # --- planning
    def build_plan(self) -> list[Step]:
        """The expert's turns: identity request, lookup, gold reads, confirm/write/outcome, info, transfer."""
        identity = self.script.identity
        env = self.domain.new_environment()
        steps: list[Step] = [
            Step(
                kind="say",
                text="I'd be happy to help. First, I need to authenticate you: could you please provide your email "
                "address, or your first name, last name and zip code?",
            )
        ]
        gold = [
            ToolCall(id=f"gold_{i}", name=a.name, arguments=dict(a.arguments))
            for i, a in enumerate(self.task.gold_actions)
            if a.requestor == "assistant"
        ]
        lookup = next((c for c in gold if c.name in LOOKUP_TOOLS and _succeeds(self.domain, c, identity.user_id)), None)
        if lookup is None:
            lookup = (
                ToolCall(id="auth", name="find_user_id_by_email", arguments={"email": identity.email})
                if identity.method == "email"
                else ToolCall(
                    id="auth",
                    name="find_user_id_by_name_zip",
                    arguments={"first_name": identity.first_name, "last_name": identity.last_name, "zip": identity.zip},
                )
            )
        env.call(lookup)
        steps.append(Step(kind="call", call=lookup))
        transfer: list[Step] = []
        for call in gold:
            if call.name in LOOKUP_TOOLS:
                continue
            if call.name == "transfer_to_human_agents":
                if not env.call(call).error:
                    transfer = [Step(kind="call", call=call), Step(kind="say", text=TRANSFER_MESSAGE)]
                continue
            if not self.domain.is_write_tool(call.name):
                if not env.call(call).error:
                    steps.append(Step(kind="call", call=call))
                continue
            intent = intent_from_call(self.domain, env.db, call, identity.user_id)
            if env.call(call).error:
                continue
            index = len(self.intents)
            self.intents.append(intent)
            if self.confirm_writes:
                steps.append(Step(kind="confirm", text=confirmation_text(intent), write_index=index))
            steps.append(Step(kind="call", call=call, write_index=index))
            steps.append(Step(kind="say", text=f"{outcome_text(intent)} {ANYTHING_ELSE}", write_index=index))
        infos = self.task.communicate_info
        if infos or not (self.intents or transfer):
            told = "Here is the information you asked about: " + "; ".join(infos) + "." if infos else ""
            told = told or "I have looked into your account and your orders."
            if steps[-1].kind == "say" and steps[-1].write_index is not None:
                last = steps[-1]
                steps[-1] = msgspec.structs.replace(last, text=f"{told} {last.text}")
            else:
                steps.append(Step(kind="say", text=f"{told} {ANYTHING_ELSE}"))
        return steps + transfer

    # --- acting
    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        del tools
        if len(conversation) < self._seen:  # a new episode
            self._cursor, self._apologies = 0, 0
        self._seen = len(conversation) + 1
        return PolicyTurn(message=self.next_message(conversation))

    def next_message(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        """The next assistant message (one tool call, or text only)."""
        last_user = next((m.content for m in reversed(conversation) if m.role == "user"), "")
        if self._cursor >= len(self.plan):
            self._apologies += 1
            if self._apologies > 2:
                return ChatMessage(role="assistant", content=f"Thank you for contacting us. Goodbye! {STOP}")
            return ChatMessage(
                role="assistant", content=f"I'm sorry, but I cannot help with that request. {ANYTHING_ELSE}"
            )
        step = self.plan[self._cursor]
        self._cursor += 1
        previous = self.plan[self._cursor - 2] if self._cursor >= 2 else None
        if step.kind == "call" and previous is not None and previous.kind == "confirm" and not is_yes(last_user):
            # Declined: skip the write and its outcome message.
            self._cursor += 1
            return ChatMessage(role="assistant", content=f"Understood, I will not make that change. {ANYTHING_ELSE}")
        return self.render(step)

    def render(self, step: Step) -> ChatMessage:
        """One planned step as a message (faulty variants override it)."""
        if step.kind == "call":
            assert step.call is not None
            return ChatMessage(role="assistant", tool_calls=(step.call,))
        return ChatMessage(role="assistant", content=step.text)


def _succeeds(domain: RetailDomain, call: ToolCall, user_id: str) -> bool:
    """Whether a lookup call finds this user."""
    outcome = domain.new_environment().call(call)
    return not outcome.error and outcome.content.strip().strip('"') == user_id
