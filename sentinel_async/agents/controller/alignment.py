"""Aligning the trajectory's writes with the task's gold writes, and naming the argument that differs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.trajectory import CallRecord
from sentinel_async.messages import ToolCall

_ITEM_KEYS = ("item_ids", "new_item_ids")
_ADDRESS_KEYS = frozenset({"address1", "address2", "city", "state", "country", "zip"})
_TARGET_KEYS = ("order_id", "user_id")
ORDER_SENSITIVE_TOOLS = frozenset({"modify_pending_order_items"})
"""Tools whose result depends on the order of their item lists (tau2 copies the last new variant's price)."""


class ArgumentDiff(msgspec.Struct, frozen=True, kw_only=True):
    """Which argument of a write differs from the gold and how."""

    category: FailureCategory
    key: str
    detail: str


class WriteDeviation(msgspec.Struct, frozen=True, kw_only=True):
    """An executed write that is not a gold write: wrong arguments, wrong tool, or not in the gold at all."""

    category: FailureCategory
    record: CallRecord
    gold: ToolCall | None
    detail: str


class Alignment(msgspec.Struct, frozen=True, kw_only=True):
    """Executed writes matched to gold writes; the deviations; the gold writes never executed."""

    matched: list[tuple[CallRecord, ToolCall]]
    deviations: list[WriteDeviation]
    missing: list[ToolCall]


def target(call: ToolCall) -> Any:
    """What a write acts on: its order id, else its user id."""
    return next((call.arguments[k] for k in _TARGET_KEYS if k in call.arguments), None)


def _item_diff(key: str, gold: list[Any], actual: list[Any], describe: Callable[[Any], str]) -> ArgumentDiff:
    if sorted(map(str, gold)) == sorted(map(str, actual)):
        return ArgumentDiff(
            category=FailureCategory.WRONG_ITEM_SEQUENCE,
            key=key,
            detail=f"{key} lists the right items in another order ({actual} instead of {gold})",
        )
    if set(actual) < set(gold):
        missing = [i for i in gold if i not in actual]
        return ArgumentDiff(
            category=FailureCategory.MISSING_ITEMS,
            key=key,
            detail=f"{key} leaves out {', '.join(describe(i) for i in missing)}",
        )
    wrong = [i for i in actual if i not in gold]
    right = [i for i in gold if i not in actual]
    used = ", ".join(describe(i) for i in wrong) or "extra items"
    instead = ", ".join(describe(i) for i in right) or "nothing more"
    return ArgumentDiff(
        category=FailureCategory.WRONG_ITEM, key=key, detail=f"{key} has {used} where the gold has {instead}"
    )


def classify_arguments(
    name: str, gold: dict[str, Any], actual: dict[str, Any], describe: Callable[[Any], str] = str
) -> ArgumentDiff | None:
    """The deciding argument difference between a write and its gold (None: equivalent)."""
    keys = [k for k in dict.fromkeys([*gold, *actual]) if gold.get(k) != actual.get(k)]
    if name not in ORDER_SENSITIVE_TOOLS:
        keys = [
            k
            for k in keys
            if not (
                k in _ITEM_KEYS
                and isinstance(gold.get(k), list)
                and isinstance(actual.get(k), list)
                and sorted(map(str, gold[k])) == sorted(map(str, actual[k]))
            )
        ]
    if not keys:
        return None
    if "order_id" in keys:
        return ArgumentDiff(
            category=FailureCategory.WRONG_ORDER,
            key="order_id",
            detail=f"order {actual.get('order_id')} instead of {gold.get('order_id')}",
        )
    for key in _ITEM_KEYS:
        if key in keys:
            gold_items, actual_items = gold.get(key), actual.get(key)
            if isinstance(gold_items, list) and isinstance(actual_items, list):
                return _item_diff(key, gold_items, actual_items, describe)
            return ArgumentDiff(category=FailureCategory.WRONG_ITEM, key=key, detail=f"{key} is {actual_items!r}")
    simple = {"payment_method_id": FailureCategory.WRONG_PAYMENT, "reason": FailureCategory.WRONG_REASON}
    for key, category in simple.items():
        if key in keys:
            return ArgumentDiff(
                category=category, key=key, detail=f"{key} {actual.get(key)!r} instead of {gold.get(key)!r}"
            )
    address = [k for k in keys if k in _ADDRESS_KEYS]
    if address:
        parts = "; ".join(f"{k} {actual.get(k)!r} instead of {gold.get(k)!r}" for k in address)
        return ArgumentDiff(category=FailureCategory.WRONG_ADDRESS, key=address[0], detail=parts)
    key = keys[0]
    return ArgumentDiff(
        category=FailureCategory.WRONG_ARGUMENT,
        key=key,
        detail=f"{key} {actual.get(key)!r} instead of {gold.get(key)!r}",
    )


def align_writes(
    writes: Sequence[CallRecord], gold: Sequence[ToolCall], describe: Callable[[Any], str] = str
) -> Alignment:
    """Match executed writes to gold writes: equivalent first, then same tool and target, same tool, same target.

    Leftover executed writes are extra writes; leftover gold writes are missing.
    """
    free = list(range(len(gold)))
    pairs: dict[int, int] = {}

    def claim(record_index: int, accept: Callable[[ToolCall, ToolCall], bool]) -> None:
        call = writes[record_index].call
        for g in free:
            if accept(gold[g], call):
                pairs[record_index] = g
                free.remove(g)
                return

    passes: list[Callable[[ToolCall, ToolCall], bool]] = [
        lambda g, c: g.name == c.name and classify_arguments(g.name, g.arguments, c.arguments) is None,
        lambda g, c: g.name == c.name and target(g) == target(c),
        lambda g, c: g.name == c.name,
        lambda g, c: target(g) is not None and target(g) == target(c),
    ]
    for accept in passes:
        for i in range(len(writes)):
            if i not in pairs:
                claim(i, accept)
    matched: list[tuple[CallRecord, ToolCall]] = []
    deviations: list[WriteDeviation] = []
    for i, record in enumerate(writes):
        if i not in pairs:
            deviations.append(
                WriteDeviation(
                    category=FailureCategory.EXTRA_WRITE,
                    record=record,
                    gold=None,
                    detail=f"{record.call.name} is not a write of the task",
                )
            )
            continue
        g = gold[pairs[i]]
        if g.name != record.call.name:
            detail = f"{record.call.name} where the gold calls {g.name} on {target(g)}"
            deviations.append(
                WriteDeviation(category=FailureCategory.WRONG_ACTION, record=record, gold=g, detail=detail)
            )
            continue
        diff = classify_arguments(g.name, g.arguments, record.call.arguments, describe)
        if diff is None:
            matched.append((record, g))
        else:
            deviations.append(WriteDeviation(category=diff.category, record=record, gold=g, detail=diff.detail))
    deviations.sort(key=lambda d: (d.record.turn, d.record.index))
    return Alignment(matched=matched, deviations=deviations, missing=[gold[g] for g in sorted(free)])
