"""Writes the agent proposed in a confirmation request and the user declined: what the proposal got wrong.

A policy that confirms a change with a wrong value (a refund "to credit_card_7644869" where the customer said
PayPal) is refused by the customer, and the write never happens. The trajectory then shows only a missing write,
while the mistake is in the confirmation. `proposed_write` reads the proposal against the gold write it stands
for: the proposal must name at least one of the gold's id-like values (so it is about that write), and each
gold value it leaves out is replaced by the id-like value in its text of the same kind (the same digits, or the
same shape: `#W` and seven digits, ten digits). The result is the write as proposed, which the analyser
compares with the gold like an executed one (`alignment.classify_arguments`).
"""

from __future__ import annotations

import re
from typing import Any

from sentinel_async.messages import ToolCall

_ID_LIKE = re.compile(r"[#A-Za-z_]*\d[\dA-Za-z_]*")
_DIGITS = re.compile(r"\d+")


def _digits(value: str) -> str:
    return "".join(_DIGITS.findall(value))


def _is_id_like(value: Any) -> bool:
    return isinstance(value, str) and len(_digits(value)) >= 4


def _shape(value: str) -> str:
    return re.sub(r"\d", "9", value)


def _same_kind(candidate: str, gold: str) -> bool:
    """Whether `candidate` can stand where `gold` does: the same digits under another prefix, or the same shape."""
    return _digits(candidate) == _digits(gold) or _shape(candidate) == _shape(gold)


def _gold_values(arguments: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for value in arguments.values():
        for item in value if isinstance(value, list) else [value]:
            if _is_id_like(item):
                values.append(str(item))
    return values


def proposed_write(text: str, gold: ToolCall) -> ToolCall | None:
    """The write `text` proposes in place of `gold`, with the values it names instead of the gold's; None when
    the text is not about `gold` (names none of its ids) or names every one of them."""
    values = _gold_values(gold.arguments)
    found = list(dict.fromkeys(_ID_LIKE.findall(text)))
    named = set(found)
    if not values or not any(v in named for v in values):
        return None
    others = [t for t in found if t not in values and _is_id_like(t)]
    replacement: dict[str, str] = {}
    for value in values:
        if value in named or value in replacement:
            continue
        match = next((t for t in others if _same_kind(t, value) and t not in replacement.values()), None)
        if match is not None:
            replacement[value] = match
    if not replacement:
        return None

    def swap(value: Any) -> Any:
        if isinstance(value, list):
            return [swap(v) for v in value]
        return replacement.get(value, value) if isinstance(value, str) else value

    arguments = {key: swap(value) for key, value in gold.arguments.items()}
    return ToolCall(id=f"{gold.id}-proposed", name=gold.name, arguments=arguments)
