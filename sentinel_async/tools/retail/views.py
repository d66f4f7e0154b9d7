"""Retail tool results as short lines: how a small policy can read them (`ToolView`).

tau2's retail tools answer with JSON. A product's variants read `{"item_id": "7706410293", "options":
{"switch type": "clicky", ...}}`: the id comes *before* the options that identify it, so a causal model that
has to pick the variant a customer described must look back from the matching options to an id it has already
passed. `retail_lines` writes every item and variant as one line that starts the way the scripted customer
describes it, then names its ids:

    - (switch type: clicky, backlight: none, size: full size) item_id 7706410293, available, price 269.16

under the product's name (an order's items name their product on their own line, item id first:
`Desk Lamp (color: white, ...) item_id 8384507844, product_id 6817146515, price 137.94`), so finding an id
is matching the customer's words and copying what follows them, and much of the JSON punctuation is gone. Every
field survives except nulls; content that is not a JSON object or list (ids, errors, numbers) is returned
unchanged. The view is a policy's choice: events, tools and the evaluator keep tau2's text.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard


def retail_lines(name: str, content: str) -> str:
    """The result of tool `name` as lines (see the module doc); non-JSON content is returned as is."""
    del name  # the shape of the result says what it is
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if not isinstance(data, dict | list):
        return content
    return "\n".join(_lines(data, indent=""))


def _is_item(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and isinstance(value.get("options"), dict)


def item_line(item: dict[str, Any]) -> str:
    """`Name (k: v, ...) key value, ...`: the customer's description first, then the ids and the rest."""
    name = item.get("name")
    options = ", ".join(f"{k}: {_scalar(v)}" for k, v in item["options"].items())
    head = f"{name} ({options})" if name is not None else f"({options})"
    ids_first = sorted(item, key=lambda key: key != "item_id")  # the id a customer gives, then its product
    rest = ", ".join(_pair(k, item[k]) for k in ids_first if k not in ("name", "options") and item[k] is not None)
    return f"{head} {rest}" if rest else head


def _pair(key: str, value: object) -> str:
    if key == "available" and isinstance(value, bool):
        return "available" if value else "not available"
    if isinstance(value, list):
        return f"{key} [{', '.join(_scalar(v) for v in value)}]"
    if isinstance(value, dict):
        return f"{key} {{{', '.join(_pair(k, v) for k, v in value.items() if v is not None)}}}"
    return f"{key} {_scalar(value)}"


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _flat(value: object) -> bool:
    """A dict or list whose leaves are all scalars (or lists of scalars): said on one line."""
    if isinstance(value, dict):
        return all(not isinstance(v, dict) and (not isinstance(v, list) or _flat(v)) for v in value.values())
    if isinstance(value, list):
        return all(not isinstance(v, dict | list) for v in value)
    return True


def _lines(data: object, *, indent: str) -> list[str]:
    if isinstance(data, list):
        return [line for value in data for line in _entry("- ", value, indent)]
    if not isinstance(data, dict):
        return [f"{indent}{_scalar(data)}"]
    out: list[str] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict) and value and all(_keyed_by_own_id(k, v) for k, v in value.items()):
            # {"7706410293": {"item_id": "7706410293", ...}}: the key repeats an id its value holds
            out.append(f"{indent}{key}:")
            out.extend(_lines(list(value.values()), indent=indent + "  "))
        else:
            out.extend(_entry(f"{key}: ", value, indent))
    return out


def _entry(label: str, value: object, indent: str) -> list[str]:
    """One list element (`label` "- ") or field ("key: "): on its line when an item, flat or a scalar."""
    if _is_item(value):
        return [f"{indent}{label}{item_line(value)}"]
    if isinstance(value, dict | list) and not value:
        return [f"{indent}{label}none"]
    if isinstance(value, dict) and _flat(value):
        return [f"{indent}{label}{', '.join(_pair(k, v) for k, v in value.items() if v is not None)}"]
    if isinstance(value, list) and _flat(value):
        return [f"{indent}{label}{', '.join(_scalar(v) for v in value)}"]
    if isinstance(value, dict | list):
        return [f"{indent}{label.rstrip()}", *_lines(value, indent=indent + "  ")]
    return [f"{indent}{label}{_scalar(value)}"]


def _keyed_by_own_id(key: str, value: object) -> bool:
    return isinstance(value, dict) and key in (str(v) for v in value.values() if isinstance(v, str | int))
