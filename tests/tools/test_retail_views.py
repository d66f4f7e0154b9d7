"""`retail_lines`: tau2's retail results as lines a small policy reads, with nothing but nulls left out."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator

import pytest

from sentinel_async.agents.scripted.user_script import Item
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.prompt_view import view_tool_results
from sentinel_async.tools.retail import RetailDomain, RetailEnvironment
from sentinel_async.tools.retail.views import retail_lines

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")


@pytest.fixture(scope="module")
def env() -> RetailEnvironment:
    return RetailDomain().new_environment()


def call(env: RetailEnvironment, name: str, **arguments: object) -> str:
    outcome = env.call(ToolCall(id="c", name=name, arguments=dict(arguments)))
    assert not outcome.error, outcome.content
    return outcome.content


def leaves(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    elif value is not None and not isinstance(value, bool):  # booleans read as words ("not available")
        yield value if isinstance(value, str) else json.dumps(value)


def test_a_variant_reads_as_the_customer_describes_it_then_its_id(env: RetailEnvironment) -> None:
    raw = call(env, "get_product_details", product_id="1656367028")
    view = retail_lines("get_product_details", raw)
    product = json.loads(raw)
    assert view.startswith("name: Mechanical Keyboard\nproduct_id: 1656367028\nvariants:\n")
    for item_id, variant in product["variants"].items():
        described = Item(
            item_id=item_id, product_id="1656367028", name="Mechanical Keyboard", options=variant["options"]
        )
        options = described.describe().removeprefix("Mechanical Keyboard ")
        availability = "available" if variant["available"] else "not available"
        assert f"- {options} item_id {item_id}, {availability}, price {variant['price']}\n" in view + "\n"
    assert len(view) < 0.85 * len(raw)


def test_an_order_lists_each_item_on_one_line_and_drops_nulls(env: RetailEnvironment) -> None:
    raw = call(env, "get_order_details", order_id="#W2378156")
    view = retail_lines("get_order_details", raw)
    assert (
        "  - Mechanical Keyboard (switch type: linear, backlight: RGB, size: full size) item_id 1151293680, "
        "product_id 1656367028, price 272.33\n" in view
    )
    assert "status: delivered" in view
    assert "cancel_reason" not in view
    assert "null" not in view


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_order_details", {"order_id": "#W2378156"}),
        ("get_product_details", {"product_id": "4896585277"}),
        ("get_user_details", {"user_id": "yusuf_rossi_9620"}),
        ("list_all_product_types", {}),
    ],
)
def test_every_value_survives(env: RetailEnvironment, tool: str, arguments: dict[str, object]) -> None:
    raw = call(env, tool, **arguments)
    view = retail_lines(tool, raw)
    words = set(re.split(r"[\s,:()\[\]{}]+", view))
    for leaf in leaves(json.loads(raw)):
        assert leaf in view, leaf
        if " " not in leaf and "," not in leaf:
            assert leaf in words, leaf  # a whole token of the view, not part of another value


@pytest.mark.parametrize("content", ["yusuf_rossi_9620", "Error: Order not found", "1287.5", '"quoted"', "not json {"])
def test_content_that_is_no_object_or_list_is_unchanged(content: str) -> None:
    assert retail_lines("any_tool", content) == content


def test_the_view_rewrites_tool_messages_only_and_leaves_the_conversation_alone(env: RetailEnvironment) -> None:
    raw = call(env, "get_order_details", order_id="#W2378156")
    conversation = [
        ChatMessage(role="user", content='{"a": 1}'),
        ChatMessage(role="tool", content=raw, tool_call_id="c", name="get_order_details"),
    ]
    viewed = view_tool_results(conversation, retail_lines)
    assert viewed[0] == conversation[0]
    assert viewed[1].content == retail_lines("get_order_details", raw)
    assert viewed[1].tool_call_id == "c"
    assert conversation[1].content == raw
    assert view_tool_results(conversation, None) == conversation
