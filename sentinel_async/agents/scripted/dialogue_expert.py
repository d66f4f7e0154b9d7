"""An expert whose every move can be read off the conversation: the demonstrator a small model can imitate.

`ScriptedExpert` knows the gold actions and calls them directly, so its demonstrations name ids (orders,
products) that appear nowhere before the call: a model trained on them learns to make ids up. `DialogueExpert`
plays the same tasks the way a careful agent without privileged knowledge would, in one fixed protocol:

1. ask how to authenticate; look the user up with exactly what the user said;
2. per request (in the order the customer states them): ask for the order id; read the order; ask for what
   the request needs (item ids, new options, payment method, reason or address); read the products whose
   variants it will pick (saying first the item's line of the order listing up to its product id,
   `product_cue`); list the change with every argument spelt out and ask for an explicit yes;
   make the call with those arguments; report the outcome and ask whether there is anything else;
3. transfer when the customer asks for something out of scope; tell requested information.

Every value a call writes appears earlier in the conversation, most often in the message just before it
(the confirmation mirrors the call's arguments), so copying is local. The privileged script is used only to
decide which question comes next and to pick the variant the customer asked for (which a model must learn to
find in the product details it read). Information answers (`communicate_info`) are the exception: they are
said as the task states them, even where computing them would take more than reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.agents.scripted.expert import ANYTHING_ELSE, STOP, TRANSFER_MESSAGE, Step, is_yes, outcome_text
from sentinel_async.agents.scripted.user_script import Intent, UserScript, derive_user_script
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain

ASK_IDENTITY = (
    "I'd be happy to help. First, I need to authenticate you: could you please provide your email address, "
    "or your first name, last name and zip code?"
)
ASK_ORDER = "Which order is it about? Please give me the order id."

ASK_DETAILS: dict[str, str] = {
    "cancel": "What is the reason for the cancellation?",
    "return": "Which items do you want to return (item ids), and which payment method should get the refund?",
    "exchange": (
        "Which items do you want to exchange (item ids), which options do you want for the new items, "
        "and which payment method should settle the difference?"
    ),
    "modify_items": (
        "Which items do you want to change (item ids), which options do you want for the new items, "
        "and which payment method should settle the difference?"
    ),
    "modify_address": "What is the new shipping address?",
    "modify_payment": "Which payment method do you want to use?",
    "modify_user_address": "What is the new default address for your profile?",
}
"""The question that makes the scripted customer state everything a request's write call needs."""

ORDER_KINDS = frozenset({"cancel", "return", "exchange", "modify_items", "modify_address", "modify_payment"})
ADDRESS_FIELDS = ("address1", "address2", "city", "state", "country", "zip")


def product_cue(intent: Intent, product_id: str) -> str:
    """What the expert says with a product lookup: the customer's item as the order lists it, from its item id
    to the product id (`item_id 8384507844, product_id 6817146515`).

    The item id is the one the customer just gave (a copy); the product id follows it on that item's line of
    the order listing, so once the item id is written the product id is the continuation of words the model
    has just copied (an induction), not a second lookup. Measured: 0 of 29 product lookups right on any CPU
    bootstrap without a cue; with a cue that began with the item's description, the description's first word
    already named the wrong item in most of them."""
    old = next(item for item, new in zip(intent.items, intent.new_items, strict=False) if new.product_id == product_id)
    return f"item_id {old.item_id}, product_id {product_id}"


def write_call(intent: Intent, user_id: str, call_id: str) -> ToolCall:
    """The write that fulfils `intent`, its arguments in the tool's own parameter order."""
    assert intent.tool is not None
    args: dict[str, Any] = {}
    if intent.kind == "modify_user_address":
        args["user_id"] = user_id
    else:
        args["order_id"] = intent.order_id
    if intent.kind == "cancel":
        args["reason"] = intent.reason
    if intent.kind in ("return", "exchange", "modify_items"):
        args["item_ids"] = [item.item_id for item in intent.items]
    if intent.kind in ("exchange", "modify_items"):
        args["new_item_ids"] = [item.item_id for item in intent.new_items]
    if intent.kind in ("modify_address", "modify_user_address"):
        assert intent.address is not None
        args.update({name: getattr(intent.address, name) for name in ADDRESS_FIELDS})
    if intent.payment is not None and intent.kind in ("return", "exchange", "modify_items", "modify_payment"):
        args["payment_method_id"] = intent.payment.payment_method_id
    return ToolCall(id=call_id, name=intent.tool, arguments=args)


def confirmation(intent: Intent, call: ToolCall) -> str:
    """The change spelt out with the call's own values, and the request for an explicit yes.

    A new item is said as the customer described it, then its id (`Name (k: v, ...) item_id 123`): that is how
    a variant reads in the product details seen through `retail_lines`, so the id is what follows words the
    turn has just written, rather than something to pick out of a listing by its options.
    """
    args = call.arguments
    order = args.get("order_id")
    payment = args.get("payment_method_id")
    if intent.kind == "cancel":
        body = f"cancel pending order {order} with the reason '{args['reason']}'"
    elif intent.kind == "return":
        body = f"return items {', '.join(args['item_ids'])} of delivered order {order}, refund to {payment}"
    elif intent.kind in ("exchange", "modify_items"):
        verb = "exchange" if intent.kind == "exchange" else "modify"
        state = "delivered" if intent.kind == "exchange" else "pending"
        new_items = "; ".join(f"{item.describe()} item_id {item.item_id}" for item in intent.new_items)
        body = (
            f"{verb} items {', '.join(args['item_ids'])} of {state} order {order} for new items {new_items}; "
            f"paying the difference with {payment}"
        )
    elif intent.kind == "modify_payment":
        body = f"change the payment method of pending order {order} to {payment}"
    else:
        fields = ", ".join(f"{name} {args[name] or '-'}" for name in ADDRESS_FIELDS)
        target = f"pending order {order}" if intent.kind == "modify_address" else f"user {args['user_id']}"
        body = f"change the {'shipping' if order else 'default'} address of {target} to {fields}"
    return f"I will {body}. Do you confirm (yes/no)?"


class DialogueExpert:
    """A `Policy` that solves one retail task with `ScriptedUser`, reading every value it writes off the chat."""

    def __init__(self, task: TaskSpec, domain: RetailDomain, *, script: UserScript | None = None) -> None:
        self.task = task
        self.domain = domain
        self.script = script or derive_user_script(task, domain)
        self.plan: list[Step] = self.build_plan()
        self._cursor = 0
        self._seen = 0
        self._apologies = 0

    def build_plan(self) -> list[Step]:
        """The whole conversation's assistant turns, fixed up front (the customer's answers are scripted)."""
        identity = self.script.identity
        if identity.method == "email":
            lookup = ToolCall(id="auth", name="find_user_id_by_email", arguments={"email": identity.email})
        else:
            lookup = ToolCall(
                id="auth",
                name="find_user_id_by_name_zip",
                arguments={"first_name": identity.first_name, "last_name": identity.last_name, "zip": identity.zip},
            )
        steps = [Step(kind="say", text=ASK_IDENTITY), Step(kind="call", call=lookup)]
        writes = 0
        for number, intent in enumerate(self.script.intents):
            if intent.kind == "info":
                told = "; ".join(intent.answers)
                text = f"Here is the information you asked about: {told}." if told else "I have looked into it."
                steps.append(Step(kind="say", text=f"{text} {ANYTHING_ELSE}"))
                continue
            if intent.kind == "transfer":
                summary = f"The user asks: {intent.request}. This cannot be handled with the available tools."
                call = ToolCall(
                    id=f"transfer_{number}", name="transfer_to_human_agents", arguments={"summary": summary}
                )
                steps += [Step(kind="call", call=call), Step(kind="say", text=TRANSFER_MESSAGE)]
                continue
            if intent.kind in ORDER_KINDS:
                assert intent.order_id is not None
                read = ToolCall(id=f"order_{number}", name="get_order_details", arguments={"order_id": intent.order_id})
                steps += [Step(kind="say", text=ASK_ORDER), Step(kind="call", call=read)]
            steps.append(Step(kind="say", text=ASK_DETAILS[intent.kind]))
            for product_id in dict.fromkeys(item.product_id for item in intent.new_items):
                read = ToolCall(
                    id=f"product_{number}_{product_id}",
                    name="get_product_details",
                    arguments={"product_id": product_id},
                )
                steps.append(Step(kind="call", call=read, text=product_cue(intent, product_id)))
            call = write_call(intent, identity.user_id, f"write_{number}")
            steps += [
                Step(kind="confirm", text=confirmation(intent, call), write_index=writes),
                Step(kind="call", call=call, write_index=writes),
                Step(kind="say", text=f"{outcome_text(intent)} {ANYTHING_ELSE}", write_index=writes),
            ]
            writes += 1
        return steps

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
            return ChatMessage(role="assistant", content=f"I'm sorry, I cannot help with that. {ANYTHING_ELSE}")
        step = self.plan[self._cursor]
        self._cursor += 1
        previous = self.plan[self._cursor - 2] if self._cursor >= 2 else None
        if step.kind == "call" and previous is not None and previous.kind == "confirm" and not is_yes(last_user):
            self._cursor += 1  # declined: skip the write and its outcome
            return ChatMessage(role="assistant", content=f"Understood, I will not make that change. {ANYTHING_ELSE}")
        if step.kind == "call":
            assert step.call is not None
            return ChatMessage(role="assistant", content=step.text, tool_calls=(step.call,))
        return ChatMessage(role="assistant", content=step.text)
