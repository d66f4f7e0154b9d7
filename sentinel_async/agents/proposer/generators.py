"""Intent generators: gold action lists built from real retail state, trajectory first.

A `Recipe` names the intent kinds of one task and how to stress them (`Targeting`). `generate` picks an
allowed user that fits, authenticates (email or name + zip lookup, then `get_user_details`), reads what each
intent needs (`get_order_details`, `get_product_details`), and executes every call on a private fork as it is
added. The result is a `Draft`: the gold actions, the `UserScript` the scripted customer plays, the facts to
communicate and the records that may change.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from sentinel_async.agents.proposer.builder import (
    CANCEL_REASONS,
    DRAFT_KINDS,
    Draft,
    DraftKind,
    GoldBuilder,
    Recipe,
    Targeting,
    UnfitError,
)
from sentinel_async.agents.proposer.sampling import RecordPool
from sentinel_async.agents.scripted.user_script import Intent, UserScript, order_items
from sentinel_async.tools.retail import RetailDomain

__all__ = ["CANCEL_REASONS", "DRAFT_KINDS", "Draft", "DraftKind", "Recipe", "Targeting", "generate"]

# --- variant choice ------------------------------------------------------------------------------------------


def _alternatives(domain: RetailDomain, item: Any, similar: bool) -> list[Any]:
    """Available variants of the item's product other than its own (one option apart first when `similar`)."""
    variants = domain.products[item.product_id].variants
    others = [v for v in variants.values() if v.available and v.item_id != item.item_id]
    if similar:
        others = [v for v in others if sum(v.options.get(k) != val for k, val in item.options.items()) == 1]
    return sorted(others, key=lambda v: v.item_id)


def _changeable(domain: RetailDomain, order: Any, similar: bool) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in order.items:
        if item.item_id not in seen and _alternatives(domain, item, similar):
            seen.add(item.item_id)
            out.append(item)
    return out


def _item_count(b: GoldBuilder, available: int) -> int:
    wanted = b.t.items or b.rng.choice((1, 1, 2))
    if available < wanted:
        raise UnfitError(f"needs {wanted} items")
    return wanted


def _swap(b: GoldBuilder, kind: Literal["modify_items", "exchange"]) -> None:
    status = "pending" if kind == "modify_items" else "delivered"
    similar = b.t.similar
    need = max(b.t.items, 1)

    def fits(order: Any) -> bool:
        items = _changeable(b.domain, order, similar)
        same_product = len({i.product_id for i in order.items}) < len(order.items)
        return len(items) >= need and (not similar or same_product or b.rng.random() < 0.5)

    order = b.pick_order((status,), fits)
    items = _changeable(b.domain, order, similar)
    chosen = b.rng.sample(items, _item_count(b, len(items)))
    new = [b.rng.choice(_alternatives(b.domain, item, similar)) for item in chosen]
    for item in chosen:
        b.read("get_product_details", "product_id", item.product_id)
    diff = round(sum(v.price - i.price for i, v in zip(chosen, new, strict=True)), 2)
    payment = _payment(b, order, need=diff)
    tool = "modify_pending_order_items" if kind == "modify_items" else "exchange_delivered_order_items"
    args = {
        "order_id": order.order_id,
        "item_ids": [i.item_id for i in chosen],
        "new_item_ids": [v.item_id for v in new],
        "payment_method_id": payment,
    }
    changes = {("orders", order.order_id)} | (b.user_key(payment) if kind == "modify_items" else set())
    b.write(tool, args, changes)


def _targeted_kinds(b: GoldBuilder) -> list[Callable[[str], bool]]:
    """The payment kinds the recipe stresses (`Targeting.gift_card`, `Targeting.paypal`), as predicates."""
    kinds = ((b.t.gift_card, b.is_gift_card), (b.t.paypal, b.is_paypal))
    return [is_kind for wanted, is_kind in kinds if wanted]


def _payment(b: GoldBuilder, order: Any, *, need: float) -> str:
    """A payment method for a price difference: a gift card with the balance or a PayPal account when targeted,
    else any usable."""
    methods = b.user.payment_methods
    usable = sorted(pid for pid, m in methods.items() if not b.is_gift_card(pid) or m.balance >= need)
    for is_kind in _targeted_kinds(b):
        usable = [p for p in usable if is_kind(p)]
    if not usable:
        raise UnfitError("no usable payment method")
    original = order.payment_history[0].payment_method_id
    return str(original) if original in usable and b.rng.random() < 0.5 else b.rng.choice(usable)


# --- one generator per intent kind ---------------------------------------------------------------------------


def _cancel(b: GoldBuilder) -> None:
    order = b.pick_order(("pending",))
    reason = b.rng.choice(CANCEL_REASONS)
    paid = [p.payment_method_id for p in order.payment_history]
    b.write(
        "cancel_pending_order",
        {"order_id": order.order_id, "reason": reason},
        {("orders", order.order_id)} | b.user_key(*paid),
    )


def _modify_address(b: GoldBuilder) -> None:
    order = b.pick_order(("pending",))
    default = b.user.address
    if default.model_dump() != order.address.model_dump() and b.rng.random() < 0.5:
        address = default.model_dump()
    else:
        address = _new_address(b)
    b.write("modify_pending_order_address", {"order_id": order.order_id, **address}, {("orders", order.order_id)})


def _modify_payment(b: GoldBuilder) -> None:
    def fits(order: Any) -> bool:
        return len(order.payment_history) == 1 and order.payment_history[0].transaction_type == "payment"

    order = b.pick_order(("pending",), fits)
    original = order.payment_history[0]
    methods = b.user.payment_methods
    options = sorted(
        pid
        for pid, m in methods.items()
        if pid != original.payment_method_id and (not b.is_gift_card(pid) or m.balance >= original.amount)
    )
    for is_kind in _targeted_kinds(b):  # a method of that kind, or away from one
        options = [p for p in options if is_kind(p)] or [p for p in options if is_kind(original.payment_method_id)]
    if not options:
        raise UnfitError("no other payment method")
    new = b.rng.choice(options)
    changes = {("orders", order.order_id)} | b.user_key(new, original.payment_method_id)
    b.write("modify_pending_order_payment", {"order_id": order.order_id, "payment_method_id": new}, changes)


def _modify_user_address(b: GoldBuilder) -> None:
    b.write("modify_user_address", {"user_id": b.user_id, **_new_address(b)}, {("users", b.user_id)})


def _return(b: GoldBuilder) -> None:
    def paid_by_paypal(order: Any) -> bool:  # a refund goes to the original method (or a gift card)
        return bool(order.payment_history) and b.is_paypal(order.payment_history[0].payment_method_id)

    order = b.pick_order(("delivered",), paid_by_paypal if b.t.paypal else None)
    distinct = list({item.item_id: item for item in order.items}.values())
    chosen = b.rng.sample(distinct, _item_count(b, len(distinct)))
    original = order.payment_history[0].payment_method_id
    gift_cards = sorted(pid for pid in b.user.payment_methods if b.is_gift_card(pid))
    if b.t.gift_card:
        if not gift_cards:
            raise UnfitError("no gift card")
        refund = b.rng.choice(gift_cards)
    else:
        refund = original if original in b.user.payment_methods else b.rng.choice(gift_cards or [original])
    args = {"order_id": order.order_id, "item_ids": [i.item_id for i in chosen], "payment_method_id": refund}
    b.write("return_delivered_order_items", args, {("orders", order.order_id)})


def _info(b: GoldBuilder) -> None:
    facts = ["tracking", "price", "gift_balance"]
    b.rng.shuffle(facts)
    for fact in facts:
        if fact == "gift_balance":
            cards = sorted(pid for pid, m in b.user.payment_methods.items() if b.is_gift_card(pid))
            if cards:
                card = b.rng.choice(cards)
                _ask(
                    b, f"What is the current balance of my gift card {card}?", str(b.user.payment_methods[card].balance)
                )
                return
            continue
        try:
            if fact == "tracking":
                order = b.pick_order(("delivered", "processed"), lambda o: bool(o.fulfillments))
                items = "; ".join(i.describe() for i in order_items(order, [it.item_id for it in order.items]))
                _ask(
                    b,
                    f"What is the tracking number of my order with the {items}?",
                    order.fulfillments[0].tracking_id[0],
                )
                return
            order = b.pick_order(
                ("pending", "processed", "delivered"), lambda o: any(_alternatives(b.domain, i, False) for i in o.items)
            )
            item = b.rng.choice([i for i in order.items if _alternatives(b.domain, i, False)])
            variant = b.rng.choice(_alternatives(b.domain, item, False))
            b.read("get_product_details", "product_id", item.product_id)
            options = ", ".join(f"{k}: {v}" for k, v in variant.options.items())
            _ask(
                b,
                f"How much does the {item.name} with {options} cost (like the one in my order {order.order_id})?",
                str(variant.price),
            )
            return
        except UnfitError:
            continue
    raise UnfitError("no fact to ask about")


def _ask(b: GoldBuilder, question: str, answer: str) -> None:
    b.intents.append(Intent(kind="info", question=question, answers=(answer,)))
    b.infos.append(answer)


def _refusal(b: GoldBuilder) -> None:
    """A request the policy forbids: cancel a processed/delivered order, or return a pending one (DB unchanged)."""
    if b.rng.random() < 0.5:
        order = b.pick_order(("processed", "delivered"))
        request = f"I want to cancel my order {order.order_id}, because I no longer need it."
    else:
        order = b.pick_order(("pending",))
        item = b.rng.choice(order.items)
        request = f"I want to return the {item.name} from my order {order.order_id} and get a refund."
    _ask(b, f"{request} If that is not possible, I would like to know the order's status.", order.status)


def _transfer(b: GoldBuilder) -> None:
    """An out-of-scope request (a price adjustment); the customer asks for a human, the gold transfers."""
    order = b.pick_order(("delivered", "processed"))
    item = b.rng.choice(order.items)
    request = f"I want a price adjustment on the {item.name} of my order {order.order_id}, because its price dropped"
    b.intents.append(Intent(kind="transfer", request=request))
    summary = f"The user wants a price adjustment on the {item.name} of order {order.order_id}; it is out of scope."
    b.call("transfer_to_human_agents", {"summary": summary})


NEW_STREETS = ("Maple Avenue", "Cedar Street", "Hillcrest Drive", "Lakeview Road", "Oak Lane", "Park Boulevard")
"""The streets of generated tasks' new addresses (a house number goes before them)."""


def _new_address(b: GoldBuilder) -> dict[str, str]:
    """A new address: a made-up street in a city, state and zip taken from another allowed user."""
    donor = b.domain.users[b.rng.choice(b.pool.untouched or tuple(b.domain.users))].address
    suite = f"Suite {b.rng.randint(100, 999)}" if b.rng.random() < 0.5 else ""
    street = f"{b.rng.randint(100, 9999)} {b.rng.choice(NEW_STREETS)}"
    return {
        "address1": street,
        "address2": suite,
        "city": donor.city,
        "state": donor.state,
        "country": donor.country,
        "zip": donor.zip,
    }


_GENERATORS: dict[DraftKind, Any] = {
    "cancel": _cancel,
    "modify_items": lambda b: _swap(b, "modify_items"),
    "modify_address": _modify_address,
    "modify_payment": _modify_payment,
    "modify_user_address": _modify_user_address,
    "return": _return,
    "exchange": lambda b: _swap(b, "exchange"),
    "info": _info,
    "refusal": _refusal,
    "transfer": _transfer,
}


def generate(
    domain: RetailDomain,
    pool: RecordPool,
    recipe: Recipe,
    rng: random.Random,
    *,
    max_users: int = 60,
    avoid: tuple[str, ...] = (),
) -> Draft | None:
    """A draft for the recipe on the first allowed user that fits (None when `max_users` users did not)."""
    order = sorted(recipe.kinds, key=lambda k: (k == "transfer", k == "info"))  # facts after writes, transfer last
    for attempt, user_id in enumerate(pool.users(rng, avoid=avoid)):
        if attempt >= max_users:
            return None
        b = GoldBuilder(domain, pool, user_id, random.Random(rng.random()), recipe.targeting)
        try:
            identity = b.authenticate()
            for kind in order:
                _GENERATORS[kind](b)
        except UnfitError:
            continue
        return Draft(
            recipe=recipe,
            user_id=user_id,
            actions=tuple(b.actions),
            script=UserScript(identity=identity, intents=tuple(b.intents)),
            communicate_info=tuple(b.infos),
            allowed_changes=frozenset(b.allowed),
            write_targets=frozenset(b.targets),
            order_ids=tuple(b.used_orders),
        )
    return None
