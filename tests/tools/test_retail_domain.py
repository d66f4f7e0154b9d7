"""The retail domain against tau2's own code: tasks, tools, forks and the database hash (no mocks)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import msgspec
import pytest

from sentinel_async.messages import ToolCall
from sentinel_async.tools.base import Domain
from sentinel_async.tools.retail import RetailDomain, task_from_tau2, task_to_tau2
from sentinel_async.tools.retail.store import entity_json
from sentinel_async.tools.tau2_compat import tau2_messages, tau2_retail

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")

WRITE_TOOLS = {
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_payment",
    "modify_pending_order_items",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
}


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


def pending_order_id(domain: RetailDomain) -> str:
    return next(oid for oid, order in domain.orders.items() if order.status == "pending")


def test_satisfies_domain_protocol(domain: RetailDomain) -> None:
    typed: Domain = domain
    assert typed.name == "retail"
    assert len(domain.tool_names()) == 15
    assert domain.write_tools() == WRITE_TOOLS
    assert domain.is_write_tool("cancel_pending_order")
    assert not domain.is_write_tool("get_order_details")
    assert "Authenticate" in domain.policy() or "authenticate" in domain.policy()
    schemas = domain.tool_schemas()
    assert {s["function"]["name"] for s in schemas} == set(domain.tool_names())
    schemas[0]["function"]["name"] = "changed"  # callers get a copy
    assert domain.tool_schemas()[0]["function"]["name"] != "changed"


def test_splits_match_tau2(domain: RetailDomain) -> None:
    train, test, base = domain.tasks("train"), domain.tasks("test"), domain.tasks("base")
    assert (len(train), len(test), len(base)) == (74, 40, 114)
    assert not {t.id for t in train} & {t.id for t in test}
    get_tasks = tau2_retail().get_tasks
    for split, ours in (("train", train), ("test", test)):
        assert [t.id for t in ours] == [t.id for t in get_tasks(split)]
    assert domain.task("5").id == "5"
    with pytest.raises(KeyError):
        domain.task("nope")


def test_tasks_round_trip_to_tau2(domain: RetailDomain) -> None:
    theirs = {t.id: t for t in tau2_retail().get_tasks("base")}
    for task in domain.tasks():
        converted = task_to_tau2(task)
        assert converted == theirs[task.id]
        assert converted.model_dump() == theirs[task.id].model_dump()
        assert task_from_tau2(theirs[task.id]) == task
    with_script = msgspec.structs.replace(domain.task("0"), user_script={"name": "x"})
    assert task_to_tau2(with_script) == theirs["0"]


def test_fresh_fork_hash_equals_tau2(domain: RetailDomain) -> None:
    expected = tau2_retail().get_environment().get_db_hash()
    env = domain.new_environment()
    assert domain.base_hash() == expected
    assert env.state_hash() == expected
    assert env.tau2_environment().get_db_hash() == expected
    env.call(ToolCall(id="r", name="get_order_details", arguments={"order_id": "#W2378156"}))
    assert env.state_hash() == expected  # reads change nothing
    assert env.changes() == {}


def test_forks_are_independent(domain: RetailDomain) -> None:
    order_id = pending_order_id(domain)
    base_before = domain.orders[order_id].model_dump()
    first, second = domain.new_environment(), domain.new_environment()
    outcome = first.call(
        ToolCall(id="w", name="cancel_pending_order", arguments={"order_id": order_id, "reason": "no longer needed"})
    )
    assert not outcome.error, outcome.content
    assert first.db.orders[order_id].status == "cancelled"
    assert first.state_hash() != domain.base_hash()
    assert first.state_hash() == first.tau2_environment().get_db_hash()
    assert second.state_hash() == domain.base_hash()
    assert second.db.orders[order_id].status == "pending"
    assert domain.orders[order_id].model_dump() == base_before
    assert domain.new_environment().state_hash() == domain.base_hash()
    assert domain.store.entry("orders", order_id) == f'"{order_id}": {entity_json(domain.orders[order_id])}'


def _containers(value: Any, seen: set[int]) -> None:
    """The ids of every list/dict/model reachable from value."""
    if isinstance(value, dict):
        seen.add(id(value))
        for item in value.values():
            _containers(item, seen)
    elif isinstance(value, list):
        seen.add(id(value))
        for item in value:
            _containers(item, seen)
    elif hasattr(value, "__pydantic_fields__"):
        seen.add(id(value))
        for name in type(value).model_fields:
            _containers(getattr(value, name), seen)


def test_fork_copies_share_nothing_mutable(domain: RetailDomain) -> None:
    env = domain.new_environment()
    order_id, user_id = "#W2378156", domain.orders["#W2378156"].user_id
    for table, key in (("orders", order_id), ("users", user_id), ("products", "6817146515")):
        mine: set[int] = set()
        base: set[int] = set()
        _containers(getattr(env.db, table)[key], mine)
        _containers(getattr(domain.db, table)[key], base)
        _containers(domain.store._dumps[table][key], base)
        assert mine
        assert not mine & base


def _replay_tau2(actions: list[tuple[str, dict[str, Any]]]) -> str:
    env = tau2_retail().get_environment()
    tool_call = tau2_messages().tool_call
    for index, (name, arguments) in enumerate(actions):
        env.get_response(tool_call(id=str(index), name=name, arguments=arguments))
    return str(env.get_db_hash())


def test_state_hash_equals_tau2_after_every_write_tool(domain: RetailDomain) -> None:
    per_tool: dict[str, int] = {}
    checked = 0
    for task in domain.tasks():
        names = {a.name for a in task.gold_actions} & WRITE_TOOLS
        if not names or all(per_tool.get(n, 0) >= 2 for n in names):
            continue
        for name in names:
            per_tool[name] = per_tool.get(name, 0) + 1
        actions = [(a.name, a.arguments) for a in task.gold_actions]
        env = domain.new_environment()
        for index, (name, arguments) in enumerate(actions):
            env.call(ToolCall(id=str(index), name=name, arguments=arguments))
        ours = env.state_hash()
        assert ours != domain.base_hash(), task.id
        assert ours == env.tau2_environment().get_db_hash(), task.id
        assert ours == _replay_tau2(actions), task.id
        checked += 1
    assert set(per_tool) == WRITE_TOOLS
    assert checked >= 7


def test_outcomes_match_tau2(domain: RetailDomain) -> None:
    calls = [
        ToolCall(id="1", name="get_order_details", arguments={"order_id": "#W2378156"}),
        ToolCall(id="2", name="get_order_details", arguments={"order_id": "#nope"}),
        ToolCall(id="3", name="find_user_id_by_email", arguments={"email": "nobody@example.com"}),
        ToolCall(id="4", name="list_all_product_types"),
        ToolCall(id="5", name="calculate", arguments={"expression": "2 * (3 + 4)"}),
        ToolCall(id="6", name="cancel_pending_order", arguments={"order_id": "#W2378156", "reason": "bored"}),
    ]
    env, theirs = domain.new_environment(), tau2_retail().get_environment()
    tool_call = tau2_messages().tool_call
    for call in calls:
        outcome = env.call(call)
        expected = theirs.get_response(tool_call(id=call.id, name=call.name, arguments=call.arguments))
        assert (outcome.content, outcome.error) == (expected.content, expected.error), call.name
    assert env.call(calls[1]).content == "Error: Order not found"


@pytest.mark.parametrize(
    ("name", "arguments", "fragment"),
    [
        ("no_such_tool", {}, "Tool 'no_such_tool' not found"),
        ("get_order_details", {}, "missing 1 required positional argument: 'order_id'"),
        ("get_order_details", {"order_id": "#W2378156", "extra": 1}, "unexpected keyword argument 'extra'"),
        ("get_order_details", {"order_id": ["#W2378156"]}, "Error:"),
        ("modify_pending_order_items", {"order_id": "#W2378156", "item_ids": 5}, "Error:"),
    ],
)
def test_bad_calls_are_error_outcomes(
    domain: RetailDomain, name: str, arguments: dict[str, Any], fragment: str
) -> None:
    outcome = domain.new_environment().call(ToolCall(id="x", name=name, arguments=arguments))
    assert outcome.error
    assert outcome.content.startswith("Error: ")
    assert fragment in outcome.content


def test_read_only_views(domain: RetailDomain) -> None:
    assert len(domain.users) == 500
    assert len(domain.orders) == 1000
    assert len(domain.products) == 50
    with pytest.raises(TypeError):
        domain.users["x"] = None  # type: ignore[index]


def test_import_is_lazy_and_side_effects_are_off() -> None:
    code = (
        "import sys\n"
        "import sentinel_async.tools, sentinel_async.tools.retail, sentinel_async.tools.retail.evaluation\n"
        "import sentinel_async.tools.tiny, sentinel_async.metrics\n"
        "assert 'tau2' not in sys.modules, 'tau2 imported eagerly'\n"
        "from sentinel_async.tools.tau2_compat import prepare_tau2_import\n"
        "import dotenv, os\n"
        "real = dotenv.load_dotenv\n"
        "prepare_tau2_import()\n"
        "import tau2.utils.utils as u\n"
        "assert dotenv.load_dotenv is real and u.load_dotenv is not real\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP']\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # loguru is silenced for tau2
