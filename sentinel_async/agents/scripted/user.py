"""A deterministic retail customer that plays a `UserScript` (no LLM).

Its state is recomputed from the conversation at every turn: which intents are done (a successful write
call of the intent's tool on its target, in script order; an info intent once every answer was said; a
transfer once `transfer_to_human_agents` succeeded), whether the agent's latest text asks for identity,
details or a confirmation. The RNG (seeded, per turn) only picks surface wording.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import msgspec

from sentinel_async.agents.scripted.user_script import Intent, Item, UserScript
from sentinel_async.messages import ChatMessage

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"

_YES = ("Yes, please go ahead.", "Yes, I confirm.", "Yes, that's correct. Please proceed.")
_NO = "No, that's not what I want."
_CONFIRM_CUES = ("confirm", "(yes/no)", "proceed", "shall i", "should i go ahead", "would you like me to", "go ahead")
_KIND_CUES: dict[str, tuple[str, ...]] = {
    "cancel": ("cancel",),
    "return": ("return",),
    "exchange": ("exchange",),
    "modify_items": ("modify", "change", "update", "replace", "swap"),
    "modify_address": ("address",),
    "modify_payment": ("payment",),
    "modify_user_address": ("address",),
}
_ORDER_ID = re.compile(r"#?w\d{7}")


def _has(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as a whole word or words (case-insensitive)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(phrase.lower())}(?![a-z0-9])", text) is not None


def _item_named(text: str, item: Item, intent: Intent) -> bool:
    """The item is named by id, or by product name (plus all its option values when the name is ambiguous)."""
    if _has(text, item.item_id):
        return True
    if not _has(text, item.name):
        return False
    namesakes = [it for it in (*intent.items, *intent.others) if it.name == item.name and it is not item]
    return not namesakes or all(_has(text, v) for v in item.options.values())


def _other_item_named(text: str, other: Item, intent: Intent) -> bool:
    """An item of the order that the customer does not want touched is named (by id, or by a name of its own)."""
    if any(new.item_id == other.item_id for new in intent.new_items):
        return False  # the order already holds a copy of the wanted variant
    return _has(text, other.item_id) or (_has(text, other.name) and all(it.name != other.name for it in intent.items))


def _new_item_named(text: str, old: Item, new: Item) -> bool:
    changed = [v for k, v in new.options.items() if old.options.get(k) != v]
    return _has(text, new.item_id) or all(_has(text, v) for v in changed)


def proposal_matches(text: str, intent: Intent) -> bool:
    """Whether an agent's confirmation request proposes exactly this write (checked on the visible text)."""
    text = text.lower()
    if intent.kind in ("info", "transfer") or not any(_has(text, cue) for cue in _KIND_CUES[intent.kind]):
        return False
    mentioned_orders = {m.lstrip("#") for m in _ORDER_ID.findall(text)}
    if intent.kind == "modify_user_address":
        if mentioned_orders:
            return False
    elif intent.order_id is None or mentioned_orders != {intent.order_id.lower().lstrip("#")}:
        return False
    if intent.kind != "cancel" and not all(_item_named(text, item, intent) for item in intent.items):
        return False
    if any(_other_item_named(text, other, intent) for other in intent.others):
        return False
    if not all(_new_item_named(text, old, new) for old, new in zip(intent.items, intent.new_items, strict=False)):
        return False
    if intent.payment is not None and not _payment_named(text, intent):
        return False
    if intent.reason is not None and not _has(text, intent.reason):
        return False
    address = intent.address
    return address is None or (_has(text, address.address1) and _has(text, address.zip))


def _payment_named(text: str, intent: Intent) -> bool:
    payment = intent.payment
    if payment is None:
        return True
    if _has(text, payment.payment_method_id):
        return True
    if payment.source == "credit_card":
        return payment.last_four is not None and _has(text, payment.last_four)
    return _has(text, payment.source.replace("_", " "))


class _State(msgspec.Struct, kw_only=True):
    done: list[bool]
    transferred: bool = False
    unconfirmed_write: bool = False
    stalled_turns: int = 0
    called_tools: bool = False


class ScriptedUser:
    """A `UserSimulator` that plays a `UserScript` deterministically.

    `leave_on_unconfirmed_write`: when the agent performs a write the customer did not just say yes to,
    the customer objects and ends the conversation (its remaining intents stay undone).
    """

    def __init__(
        self,
        script: UserScript,
        *,
        seed: int = 0,
        leave_on_unconfirmed_write: bool = True,
        stall_limit: int = 10,
    ) -> None:
        self.script = script
        self.seed = seed
        self.leave_on_unconfirmed_write = leave_on_unconfirmed_write
        self.stall_limit = stall_limit

    async def respond(self, conversation: Sequence[ChatMessage]) -> ChatMessage:
        return ChatMessage(role="user", content=self.reply(conversation))

    def reply(self, conversation: Sequence[ChatMessage]) -> str:
        """The next user message's text."""
        user_turns = sum(1 for m in conversation if m.role == "user")
        rng = random.Random(f"{self.seed}:{user_turns}")
        state = self._state(conversation)
        pending = [intent for intent, done in zip(self.script.intents, state.done, strict=True) if not done]
        if state.transferred:
            return TRANSFER
        if state.unconfirmed_write and self.leave_on_unconfirmed_write:
            return f"I never agreed to that change! I don't want to continue this conversation. {STOP}"
        if user_turns >= self.script.max_turns or state.stalled_turns >= self.stall_limit:
            return f"I don't think we are getting anywhere. Goodbye. {STOP}"
        last = next((m for m in reversed(conversation) if m.role == "assistant" and m.content.strip()), None)
        text = last.content.lower() if last is not None else ""
        if user_turns == 0:
            return self._opening(pending, rng)
        if any(cue in text for cue in _CONFIRM_CUES) and any(k in text for ks in _KIND_CUES.values() for k in ks):
            return self._confirmation(text, pending, rng)
        if not pending:
            return f"That's all I needed, thank you! {STOP}"
        return self._answer(text, pending[0], rng)

    # --- conversation state
    def _state(self, conversation: Sequence[ChatMessage]) -> _State:
        intents = self.script.intents
        state = _State(done=[False] * len(intents))
        results = {m.tool_call_id: m for m in conversation if m.role == "tool"}
        last_user = ""
        for message in conversation:
            if message.role == "user":
                last_user = message.content
                state.stalled_turns += 1
                continue
            if message.role != "assistant":
                continue
            progressed = self._mark_info(message.content, state)
            for call in message.tool_calls:
                result = results.get(call.id)
                if result is None or result.error:
                    continue
                state.called_tools = True
                if call.name == "transfer_to_human_agents":
                    state.transferred = True
                index = self._match_write(call.name, call.arguments, state)
                if index is None:
                    continue
                state.done[index] = progressed = True
                if intents[index].kind != "transfer" and not last_user.lower().startswith("yes"):
                    state.unconfirmed_write = True
                last_user = ""
            if progressed:
                state.stalled_turns = 0
        return state

    def _match_write(self, name: str, arguments: dict[str, object], state: _State) -> int | None:
        """The first pending intent this successful write call fulfils (same tool, same target)."""
        order_id = arguments.get("order_id")
        for index, intent in enumerate(self.script.intents):
            if state.done[index] or intent.tool != name:
                continue
            if intent.kind in ("modify_user_address", "transfer") or intent.order_id == order_id:
                return index
        return None

    def _mark_info(self, content: str, state: _State) -> bool:
        text = content.lower().replace(",", "")
        progressed = False
        for index, intent in enumerate(self.script.intents):
            if state.done[index] or intent.kind != "info" or not text.strip():
                continue
            if all(answer.lower() in text for answer in intent.answers) and (intent.answers or state.called_tools):
                state.done[index] = progressed = True
        return progressed

    # --- what to say
    def _opening(self, pending: list[Intent], rng: random.Random) -> str:
        if not pending:
            return f"Actually, never mind. {STOP}"
        greeting = rng.choice(("Hi!", "Hello.", "Hi there."))
        first, *rest = pending
        text = f"{greeting} {self.describe(first)}"
        if rest:
            text += " I have a few more requests. " + " ".join(self.describe(intent) for intent in rest)
        return text

    def _confirmation(self, text: str, pending: list[Intent], rng: random.Random) -> str:
        seen: set[tuple[str | None, str | None]] = set()
        for intent in pending:
            key = (intent.tool, intent.target)
            if intent.kind not in ("info", "transfer") and key not in seen and proposal_matches(text, intent):
                return rng.choice(_YES)
            seen.add(key)
        if not pending:
            return f"{_NO} I don't need anything else. {STOP}"
        return f"{_NO} {self.describe(pending[0], detailed=True)}"

    def _answer(self, text: str, intent: Intent, rng: random.Random) -> str:
        identity = self.script.identity
        if "anything else" in text:
            return f"Yes. {self.describe(intent, detailed=True)}"
        if _has(text, "email") or _has(text, "zip") or "verify" in text or "authenticate" in text:
            if identity.method == "email":
                return f"My email is {identity.email}."
            return (
                f"I don't remember my email, but my first name is {identity.first_name}, my last name is "
                f"{identity.last_name} and my zip code is {identity.zip}."
            )
        parts: list[str] = []
        if intent.order_id and ("order id" in text or "order number" in text or "which order" in text):
            parts.append(f"The order id is {intent.order_id}.")
        if intent.items and ("item id" in text or "which item" in text or "which product" in text):
            parts.append("The items are " + "; ".join(f"{it.describe()}, item id {it.item_id}" for it in intent.items))
        if intent.new_items and any(k in text for k in ("which option", "new item", "variant", "prefer", "which one")):
            parts.append("I want " + "; ".join(it.describe() for it in intent.new_items) + ".")
        if intent.payment and ("payment" in text or "refund" in text or "pay " in text):
            parts.append(f"Please use {intent.payment.describe()}.")
        if intent.reason and "reason" in text:
            parts.append(f"The reason is: {intent.reason}.")
        if intent.address and "address" in text:
            parts.append(f"The address is {intent.address.describe()}.")
        if parts:
            return " ".join(parts)
        opener = rng.choice(("Sure.", "Okay.", "Thanks."))
        return f"{opener} {self.describe(intent, detailed=True)}"

    @staticmethod
    def describe(intent: Intent, *, detailed: bool = False) -> str:
        """How the customer states one intent (with order id and payment when `detailed`)."""
        order = f" (order {intent.order_id})" if detailed and intent.order_id else ""
        items = "; ".join(it.describe() for it in intent.items)
        pay = f" Please use {intent.payment.describe()}." if detailed and intent.payment else ""
        if intent.kind == "cancel":
            return f"I want to cancel my pending order{order} with the {items}, because it is {intent.reason}."
        if intent.kind == "return":
            return f"I want to return these items from a delivered order{order}: {items}.{pay}"
        if intent.kind in ("exchange", "modify_items"):
            verb = "exchange" if intent.kind == "exchange" else "change"
            where = "a delivered" if intent.kind == "exchange" else "a pending"
            swaps = "; ".join(
                f"{old.describe()} for {new.describe()}"
                for old, new in zip(intent.items, intent.new_items, strict=True)
            )
            return f"I want to {verb} items in {where} order{order}: {swaps}.{pay}"
        if intent.kind == "modify_address":
            assert intent.address is not None
            return f"I want to change the shipping address of my pending order{order} to {intent.address.describe()}."
        if intent.kind == "modify_payment":
            assert intent.payment is not None
            return f"I want to change the payment method of my pending order{order} to {intent.payment.describe()}."
        if intent.kind == "modify_user_address":
            assert intent.address is not None
            return f"I want to update the default address on my account to {intent.address.describe()}."
        if intent.kind == "transfer":
            return f"{intent.request}. If you cannot do that, please transfer me to a human agent."
        return intent.question or "I have a question."
