"""Retail policy preconditions of writes, checked on the database state just before each write.

tau2's tools enforce most of these and answer `Error: ...`; checking the state names the rule that was broken
(`order status is delivered; only pending orders can be cancelled`) whatever the tool's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CANCEL_REASONS = frozenset({"no longer needed", "ordered by mistake"})
_PENDING_TOOLS = frozenset(
    {
        "cancel_pending_order",
        "modify_pending_order_address",
        "modify_pending_order_payment",
        "modify_pending_order_items",
    }
)
_DELIVERED_TOOLS = frozenset({"return_delivered_order_items", "exchange_delivered_order_items"})
_SWAP_TOOLS = frozenset({"modify_pending_order_items", "exchange_delivered_order_items"})


def _get(table: Any, key: Any) -> Any:
    try:
        return table.get(key) if isinstance(key, str) else None
    except Exception:  # a foreign table type: no check
        return None


def _swap_problem(db: Any, order: Any, arguments: dict[str, Any]) -> str | None:
    old_ids, new_ids = arguments.get("item_ids"), arguments.get("new_item_ids")
    if not isinstance(old_ids, list) or not isinstance(new_ids, list) or len(old_ids) != len(new_ids):
        return None
    products = getattr(db, "products", {})
    items = {item.item_id: item for item in getattr(order, "items", [])}
    for old_id, new_id in zip(old_ids, new_ids, strict=True):
        old = items.get(old_id)
        if old is None:
            return f"item {old_id} is not in order {getattr(order, 'order_id', '?')}"
        product = _get(products, old.product_id)
        variant = _get(getattr(product, "variants", {}), new_id) if product is not None else None
        if product is not None and variant is None:
            return f"new item {new_id} is not a variant of {product.name} (item {old_id}); it must be the same product"
        if variant is not None and not variant.available:
            return f"new item {new_id} ({product.name}) is not available"
    return None


def _refund_problem(db: Any, order: Any, arguments: dict[str, Any]) -> str | None:
    method = arguments.get("payment_method_id")
    history = getattr(order, "payment_history", None) or []
    if not isinstance(method, str) or not history:
        return None
    original = history[0].payment_method_id
    if method == original or method.startswith("gift_card"):
        return None
    return f"refund to {method}; it must go to the original payment method {original} or a gift card"


def retail_precondition(db: Any, name: str, arguments: dict[str, Any], user_id: str | None) -> str | None:
    """The retail policy rule a write breaks in the state `db`, or None."""
    orders = getattr(db, "orders", None)
    order = _get(orders, arguments.get("order_id")) if orders is not None else None
    if order is None:
        return None
    status = str(getattr(order, "status", ""))
    owner = getattr(order, "user_id", None)
    if user_id is not None and owner is not None and owner != user_id:
        return f"order {arguments.get('order_id')} belongs to {owner}, not to the authenticated user {user_id}"
    if name in _PENDING_TOOLS and status != "pending":
        return f"order status is {status!r}; only pending orders can be cancelled or modified (once)"
    if name in _DELIVERED_TOOLS and status != "delivered":
        return f"order status is {status!r}; only delivered orders can be returned or exchanged"
    if name == "cancel_pending_order" and arguments.get("reason") not in CANCEL_REASONS:
        return f"cancel reason {arguments.get('reason')!r} is not one of {sorted(CANCEL_REASONS)}"
    if name in _SWAP_TOOLS:
        return _swap_problem(db, order, arguments)
    if name == "return_delivered_order_items":
        return _refund_problem(db, order, arguments)
    return None


PreconditionCheck = Callable[[Any, str, dict[str, Any], str | None], str | None]
"""`(db, tool name, arguments, authenticated user id) -> broken rule or None`."""
