"""The structured facts a scripted retail customer plays, and their derivation from a task's gold actions.

Benchmark tasks carry no script: `derive_user_script` builds one from the gold actions that succeed when
replayed in order (a failing gold call changes nothing), the scenario text and the database. Generated tasks
carry their script in `TaskSpec.user_script` (the msgspec builtins of a `UserScript`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from sentinel_async.messages import ToolCall
from sentinel_async.tools.base import TaskSpec, UserInstructions
from sentinel_async.tools.retail import RetailDomain

IntentKind = Literal[
    "cancel",
    "return",
    "exchange",
    "modify_items",
    "modify_address",
    "modify_payment",
    "modify_user_address",
    "info",
    "transfer",
]

TOOL_BY_KIND: dict[str, str] = {
    "cancel": "cancel_pending_order",
    "return": "return_delivered_order_items",
    "exchange": "exchange_delivered_order_items",
    "modify_items": "modify_pending_order_items",
    "modify_address": "modify_pending_order_address",
    "modify_payment": "modify_pending_order_payment",
    "modify_user_address": "modify_user_address",
    "transfer": "transfer_to_human_agents",
}
KIND_BY_TOOL: dict[str, IntentKind] = {
    "cancel_pending_order": "cancel",
    "return_delivered_order_items": "return",
    "exchange_delivered_order_items": "exchange",
    "modify_pending_order_items": "modify_items",
    "modify_pending_order_address": "modify_address",
    "modify_pending_order_payment": "modify_payment",
    "modify_user_address": "modify_user_address",
    "transfer_to_human_agents": "transfer",
}
LOOKUP_TOOLS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One product variant as the customer sees it: product name and option values (and its ids)."""

    item_id: str
    product_id: str
    name: str
    options: dict[str, str]

    def describe(self) -> str:
        """'Mechanical Keyboard (switch type: linear, size: full size)'."""
        return f"{self.name} ({', '.join(f'{k}: {v}' for k, v in self.options.items())})"


class PaymentMethod(msgspec.Struct, frozen=True, kw_only=True):
    """A payment method of the user's profile."""

    payment_method_id: str
    source: str
    brand: str | None = None
    last_four: str | None = None

    def describe(self) -> str:
        if self.source == "credit_card":
            return f"my {(self.brand or 'credit').title()} card ending in {self.last_four} ({self.payment_method_id})"
        label = {"paypal": "PayPal account", "gift_card": "gift card"}.get(self.source, self.source)
        return f"my {label} ({self.payment_method_id})"


class Address(msgspec.Struct, frozen=True, kw_only=True):
    address1: str
    address2: str
    city: str
    state: str
    country: str
    zip: str

    def describe(self) -> str:
        parts = [self.address1, self.address2, self.city, f"{self.state} {self.zip}", self.country]
        return ", ".join(p for p in parts if p)


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who the customer is, and how it authenticates (email, or name and zip)."""

    user_id: str
    first_name: str
    last_name: str
    zip: str
    email: str
    method: Literal["email", "name_zip"] = "name_zip"


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the customer wants done. `items[i]` becomes `new_items[i]` for exchange / modify_items.

    `others` are the order's remaining items (the customer knows them, and refuses a proposal naming one);
    `question` / `answers` are for info intents (answered once every answer string was said);
    `request` is what a transfer intent asks for.
    """

    kind: IntentKind
    order_id: str | None = None
    items: tuple[Item, ...] = ()
    new_items: tuple[Item, ...] = ()
    others: tuple[Item, ...] = ()
    payment: PaymentMethod | None = None
    reason: str | None = None
    address: Address | None = None
    question: str | None = None
    answers: tuple[str, ...] = ()
    request: str | None = None

    @property
    def tool(self) -> str | None:
        """The write tool that fulfils this intent (None for info)."""
        return TOOL_BY_KIND.get(self.kind)

    @property
    def target(self) -> str | None:
        """The record the write changes: the order id, or 'user' for the profile address."""
        return "user" if self.kind == "modify_user_address" else self.order_id


class UserScript(msgspec.Struct, frozen=True, kw_only=True):
    """What a scripted customer plays: its identity and its ordered intents."""

    identity: Identity
    intents: tuple[Intent, ...]
    max_turns: int = 30

    @property
    def ends_with_transfer(self) -> bool:
        return any(intent.kind == "transfer" for intent in self.intents)


def _address(data: Any) -> Address:
    return Address(
        address1=data.address1,
        address2=data.address2,
        city=data.city,
        state=data.state,
        country=data.country,
        zip=data.zip,
    )


def payment_method(domain: RetailDomain, user_id: str, payment_method_id: str) -> PaymentMethod:
    """The customer-visible description of one of a user's payment methods."""
    method = domain.users[user_id].payment_methods.get(payment_method_id)
    return PaymentMethod(
        payment_method_id=payment_method_id,
        source=getattr(method, "source", payment_method_id.rsplit("_", 1)[0]),
        brand=getattr(method, "brand", None),
        last_four=getattr(method, "last_four", None),
    )


def order_items(order: Any, item_ids: list[str]) -> tuple[Item, ...]:
    """The order's items with these ids, in the given order (a repeated id takes the next copy)."""
    pool = list(order.items)
    found: list[Item] = []
    for item_id in item_ids:
        match = next((it for it in pool if it.item_id == item_id), None)
        if match is None:
            raise ValueError(f"item {item_id} is not in order {order.order_id}")
        pool.remove(match)
        found.append(Item(item_id=item_id, product_id=match.product_id, name=match.name, options=dict(match.options)))
    return tuple(found)


def variant_items(domain: RetailDomain, old: tuple[Item, ...], new_ids: list[str]) -> tuple[Item, ...]:
    """The new variants, each of the same product as the item it replaces."""
    out: list[Item] = []
    for before, new_id in zip(old, new_ids, strict=True):
        product = domain.products[before.product_id]
        variant = product.variants.get(new_id)
        if variant is None:
            raise ValueError(f"item {new_id} is not a variant of {product.name}")
        out.append(Item(item_id=new_id, product_id=before.product_id, name=product.name, options=dict(variant.options)))
    return tuple(out)


def intent_from_call(domain: RetailDomain, db: Any, call: ToolCall, user_id: str) -> Intent:
    """The intent that a successful write call fulfils, read against the database just before the call."""
    kind = KIND_BY_TOOL[call.name]
    args = call.arguments
    if kind == "transfer":
        return Intent(kind=kind, request=_first_person_summary(str(args.get("summary", ""))))
    if kind == "modify_user_address":
        return Intent(kind=kind, address=_address(msgspec.convert(args, Address)))
    order = db.orders[args["order_id"]]
    pay = args.get("payment_method_id")
    payment = payment_method(domain, user_id, pay) if pay else None
    if kind == "cancel":
        items = order_items(order, [it.item_id for it in order.items])
        return Intent(kind=kind, order_id=order.order_id, items=items, reason=args["reason"])
    if kind == "modify_address":
        fields = {k: args[k] for k in ("address1", "address2", "city", "state", "country", "zip")}
        return Intent(kind=kind, order_id=order.order_id, address=msgspec.convert(fields, Address))
    if kind == "modify_payment":
        return Intent(kind=kind, order_id=order.order_id, payment=payment)
    items = order_items(order, list(args["item_ids"]))
    new_items = variant_items(domain, items, list(args["new_item_ids"])) if "new_item_ids" in args else ()
    picked = [it.item_id for it in items]
    rest = [it.item_id for it in order.items]
    for item_id in picked:
        rest.remove(item_id)
    others = order_items(order, rest)
    return Intent(kind=kind, order_id=order.order_id, items=items, new_items=new_items, others=others, payment=payment)


_FLIPS = (
    (r"\byou are\b", "I am"),
    (r"\byou're\b", "I'm"),
    (r"\byourself\b", "myself"),
    (r"\byour\b", "my"),
    (r"\byou\b", "I"),
    (r"\bthe agent\b", "you"),
)


def first_person(text: str) -> str:
    """A scenario sentence ('You want to know ...') as the customer would say it ('I want to know ...')."""
    out = text.strip()
    for pattern, repl in _FLIPS:
        out = re.sub(pattern, repl, out, flags=re.IGNORECASE)
    return out[:1].upper() + out[1:]


def _first_person_summary(summary: str) -> str:
    text = re.sub(r",? but the agent cannot help\.?$", "", summary.strip(), flags=re.IGNORECASE)
    text = re.sub(r"^the user (\w+?)s\b", r"I \1", text, flags=re.IGNORECASE)
    return text.rstrip(".") or "I need help with something outside of what you can do"


_ASKS = re.compile(r"\b(know|how much|how many|tracking|which|what)\b", re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]


def _question(instructions: UserInstructions | None) -> str:
    """The information request of a scenario, in the first person."""
    reason = instructions.reason_for_call if instructions else ""
    asks = [s for s in _sentences(reason) if _ASKS.search(s) and "agent" not in s.lower()]
    picked = asks or _sentences(reason)[:1]
    return " ".join(first_person(s) for s in picked) or "I have a question about my account."


def _identity_from_text(domain: RetailDomain, text: str) -> str | None:
    """A user id named by a scenario: its email, its user id, or its first name, last name and zip."""
    lowered = text.lower()
    for user_id, user in domain.users.items():
        if user.email.lower() in lowered or re.search(rf"\b{re.escape(user_id)}\b", lowered):
            return str(user_id)
    for user_id, user in domain.users.items():
        first, last = user.name.first_name.lower(), user.name.last_name.lower()
        if f"{first} {last}" in lowered and user.address.zip in lowered:
            return str(user_id)
    return None


def _instructions(task: TaskSpec) -> UserInstructions | None:
    instructions = task.user_scenario.instructions
    return instructions if isinstance(instructions, UserInstructions) else None


def derive_user_script(task: TaskSpec, domain: RetailDomain) -> UserScript:
    """The task's own `user_script` when it has one, else one derived from its gold actions and scenario."""
    if task.user_script is not None:
        return msgspec.convert(task.user_script, UserScript)
    env = domain.new_environment()
    user_id: str | None = None
    method: Literal["email", "name_zip"] | None = None
    intents: list[Intent] = []
    writes = set(domain.write_tools()) | {"transfer_to_human_agents"}
    for index, action in enumerate(task.gold_actions):
        call = ToolCall(id=f"derive_{index}", name=action.name, arguments=dict(action.arguments))
        if call.name in writes:
            owner = _owner(env.db, call) or user_id
            try:
                intent: Intent | None = intent_from_call(domain, env.db, call, owner or "")
            except (KeyError, ValueError, TypeError):
                intent = None  # the call cannot succeed either
            if not env.call(call).error and intent is not None:
                intents.append(intent)
            user_id = user_id or owner
            continue
        outcome = env.call(call)
        if call.name in LOOKUP_TOOLS and not outcome.error:
            user_id = outcome.content.strip().strip('"')
            method = "email" if call.name == "find_user_id_by_email" else "name_zip"
        user_id = user_id or _owner(env.db, call)
    instructions = _instructions(task)
    scenario = " ".join(filter(None, [instructions.known_info, instructions.reason_for_call])) if instructions else ""
    user_id = user_id or _identity_from_text(domain, scenario)
    if user_id is None:
        raise ValueError(f"task {task.id!r}: cannot tell which user it is about")
    user = domain.users[user_id]
    if method is None:
        method = "email" if user.email.lower() in scenario.lower() else "name_zip"
    identity = Identity(
        user_id=user_id,
        first_name=user.name.first_name,
        last_name=user.name.last_name,
        zip=user.address.zip,
        email=user.email,
        method=method,
    )
    infos = task.communicate_info
    wants_info = bool(infos) or not intents
    if wants_info:
        info = Intent(kind="info", question=_question(instructions), answers=tuple(infos))
        at = next((i for i, it in enumerate(intents) if it.kind == "transfer"), len(intents))
        intents.insert(at, info)
    return UserScript(identity=identity, intents=tuple(intents))


def _owner(db: Any, call: ToolCall) -> str | None:
    """The user a call is about, from its user id or order id."""
    args = call.arguments
    if isinstance(args.get("user_id"), str) and args["user_id"] in db.users:
        return str(args["user_id"])
    order = db.orders.get(args.get("order_id", "")) if isinstance(args.get("order_id"), str) else None
    return str(order.user_id) if order is not None else None


class ScriptCache:
    """User scripts derived once per task id and shared (by the expert, the scripted user, every trial)."""

    def __init__(self, domain: RetailDomain) -> None:
        self.domain = domain
        self._cache: dict[str, UserScript] = {}

    def get(self, task: TaskSpec) -> UserScript:
        if task.id not in self._cache:
            self._cache[task.id] = derive_user_script(task, self.domain)
        return self._cache[task.id]
