"""Verifying a generated task before it is proposed (the task-generation checklist, in order).

1. No test-split record is named by the gold or changed by it.
2. Every gold call succeeds on a fresh fork.
3. Only the intended records change; each write changes its target; a task without writes changes nothing.
4. The gold trace follows the retail policy (`policy_violations`).
5. A second replay gives the same hash.
6. tau2's own evaluator gives the gold trajectory reward 1.
7. `ScriptedExpert` + `ScriptedUser` play it to reward 1 under our `Evaluator`.
The first failing check names the rejection reason.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.episode import EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.proposer.generators import CANCEL_REASONS, Draft
from sentinel_async.agents.proposer.sampling import RecordPool
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser
from sentinel_async.agents.scripted.user_script import LOOKUP_TOOLS
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import GoldAction, TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator, score_with_tau2

_ONCE_PER_ORDER = frozenset(
    {"modify_pending_order_items", "exchange_delivered_order_items", "return_delivered_order_items"}
)
_NEEDS_DELIVERED = frozenset({"exchange_delivered_order_items", "return_delivered_order_items"})


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of verifying one candidate: `reason` names the first failed check (None: accepted)."""

    ok: bool
    reason: str | None = None
    detail: str = ""
    checks: dict[str, Any] = msgspec.field(default_factory=dict)


def _call(index: int, action: GoldAction) -> ToolCall:
    return ToolCall(id=f"gold_{index}", name=action.name, arguments=dict(action.arguments))


def policy_violations(domain: RetailDomain, actions: Sequence[GoldAction], user_id: str) -> list[str]:
    """Where the gold trace breaks the retail policy (empty: it follows it), checked on the state before each call."""
    env = domain.new_environment()
    problems: list[str] = []
    authenticated = read_user = False
    read_orders: set[str] = set()
    read_products: set[str] = set()
    changed_once: set[str] = set()
    for index, action in enumerate(actions):
        name, args = action.name, action.arguments
        call = _call(index, action)
        if index == 0 and name not in LOOKUP_TOOLS:
            problems.append("the first call is not an authentication lookup")
        if name in LOOKUP_TOOLS:
            authenticated = authenticated or env.call(call).content.strip().strip('"') == user_id
            continue
        if not authenticated:
            problems.append(f"{name} before authentication")
        if args.get("user_id", user_id) != user_id:
            problems.append(f"{name} on another user's profile")
        order = env.db.orders.get(args["order_id"]) if isinstance(args.get("order_id"), str) else None
        if order is not None and order.user_id != user_id:
            problems.append(f"{name} on another user's order {order.order_id}")
        if name == "transfer_to_human_agents" and index != len(actions) - 1:
            problems.append("transfer is not the last action")
        if domain.is_write_tool(name):
            problems.extend(_write_problems(domain, env.db, name, args, order, read_user, read_orders, read_products))
            if order is not None:
                if order.order_id in changed_once:
                    problems.append(f"a second write on order {order.order_id} after an item change")
                if name in _ONCE_PER_ORDER:
                    changed_once.add(order.order_id)
        read_user = read_user or name == "get_user_details"
        if name == "get_order_details":
            read_orders.add(str(args.get("order_id")))
        if name == "get_product_details":
            read_products.add(str(args.get("product_id")))
        env.call(call)
    return problems


def _write_problems(
    domain: RetailDomain,
    db: Any,
    name: str,
    args: dict[str, Any],
    order: Any,
    read_user: bool,
    read_orders: set[str],
    read_products: set[str],
) -> list[str]:
    problems = [] if read_user else [f"{name} without reading the user's details"]
    if name == "modify_user_address":
        return problems
    if order is None:
        return [*problems, f"{name} on an unknown order"]
    if order.order_id not in read_orders:
        problems.append(f"{name} without reading order {order.order_id}")
    wanted = "delivered" if name in _NEEDS_DELIVERED else "pending"
    if order.status != wanted:
        problems.append(f"{name} on a {order.status} order")
    if name == "cancel_pending_order" and args.get("reason") not in CANCEL_REASONS:
        problems.append(f"cancel reason {args.get('reason')!r} is not allowed")
    methods = db.users[order.user_id].payment_methods
    payment = args.get("payment_method_id")
    original = order.payment_history[0].payment_method_id if order.payment_history else None
    if payment is not None and payment not in methods:
        problems.append(f"payment method {payment} is not the user's")
    if name == "return_delivered_order_items" and payment != original and not str(payment).startswith("gift_card"):
        problems.append("the refund goes neither to the original payment method nor to a gift card")
    if name == "modify_pending_order_payment" and payment == original:
        problems.append("the new payment method is the original one")
    for old_id, new_id in zip(args.get("item_ids", []), args.get("new_item_ids", []), strict=False):
        item = next((i for i in order.items if i.item_id == old_id), None)
        variant = domain.products[item.product_id].variants.get(new_id) if item is not None else None
        if item is None or variant is None:
            problems.append(f"item {new_id} is not a variant of the product of item {old_id}")
        elif not variant.available or new_id == old_id:
            problems.append(f"item {new_id} is unavailable or unchanged")
        elif item.product_id not in read_products:
            problems.append(f"{name} without reading product {item.product_id}")
    return problems


def gold_trajectory(domain: RetailDomain, task: TaskSpec) -> list[ChatMessage]:
    """The gold actions as a conversation: one call per assistant turn, then the facts, then the user's stop."""
    env = domain.new_environment()
    messages = [
        ChatMessage(role="assistant", content="Hi! How can I help you today?"),
        ChatMessage(role="user", content="Hi, I need some help."),
    ]
    for index, action in enumerate(task.gold_actions):
        call = _call(index, action)
        outcome = env.call(call)
        messages.append(ChatMessage(role="assistant", tool_calls=(call,)))
        messages.append(ChatMessage(role="tool", content=outcome.content, tool_call_id=call.id, error=outcome.error))
    facts = "; ".join(task.communicate_info)
    messages.append(
        ChatMessage(role="assistant", content=f"Here is what you asked about: {facts}." if facts else "Done.")
    )
    messages.append(ChatMessage(role="user", content="Thanks. ###STOP###"))
    return messages


def _run_now(coro: Coroutine[Any, Any, EpisodeOutcome]) -> EpisodeOutcome:
    """Drive a coroutine that never suspends (a scripted episode) to its result, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: EpisodeOutcome = stop.value
        return result
    coro.close()
    raise RuntimeError("a scripted episode suspended; it must run without awaiting I/O")


def play_scripted(domain: RetailDomain, task: TaskSpec, evaluator: Evaluator, *, seed: int = 0) -> EpisodeOutcome:
    """One episode of `ScriptedExpert` against `ScriptedUser` on the task's own script."""
    expert = ScriptedExpert(task, domain)
    runner = EpisodeRunner(domain=domain, evaluate=evaluator.evaluate)
    user = ScriptedUser(expert.script, seed=seed)
    return _run_now(runner.run(task=task, policy=expert, user=user, episode_id=f"verify-{task.id}", seed=seed))


def item_order_sensitive(domain: RetailDomain, actions: Sequence[GoldAction]) -> bool:
    """Whether reversing the item lists of a multi-item `modify_pending_order_items` changes the final DB
    (tau2 copies the last new variant's price onto every modified item)."""
    flipped = []
    for action in actions:
        args = dict(action.arguments)
        if action.name == "modify_pending_order_items" and len(args["item_ids"]) > 1:
            args["item_ids"], args["new_item_ids"] = args["item_ids"][::-1], args["new_item_ids"][::-1]
        flipped.append(msgspec.structs.replace(action, arguments=args))
    if flipped == list(actions):
        return False
    return _replay(domain, actions)[0] != _replay(domain, flipped)[0]


def _replay(
    domain: RetailDomain, actions: Sequence[GoldAction]
) -> tuple[str, dict[tuple[str, str], str | None], list[str]]:
    env = domain.new_environment()
    errors = []
    for index, action in enumerate(actions):
        outcome = env.call(_call(index, action))
        if outcome.error:
            errors.append(f"{action.name}: {outcome.content}")
    return env.state_hash(), env.changes(), errors


def verify(
    domain: RetailDomain,
    pool: RecordPool,
    draft: Draft,
    task: TaskSpec,
    evaluator: Evaluator,
    *,
    check_tau2: bool = True,
    check_scripted: bool = True,
) -> Verification:
    """Run the checklist on a draft and its written task; the first failure is the rejection reason."""
    checks: dict[str, Any] = {}
    named_users = {draft.user_id} | {
        a.arguments["user_id"] for a in draft.actions if isinstance(a.arguments.get("user_id"), str)
    }
    named_orders = {a.arguments["order_id"] for a in draft.actions if isinstance(a.arguments.get("order_id"), str)}
    state_hash, changes, errors = _replay(domain, draft.actions)
    changed_users = {key for table, key in changes if table == "users"}
    changed_orders = {key for table, key in changes if table == "orders"}
    hits = pool.test.touches(named_users | changed_users, named_orders | changed_orders)
    if hits:
        return Verification(ok=False, reason="test_split_record", detail=", ".join(sorted(hits)))
    if errors:
        return Verification(ok=False, reason="tool_error", detail="; ".join(errors))
    checks["changes"] = sorted(f"{t}/{k}" for t, k in changes)
    unintended = set(changes) - draft.allowed_changes
    missing = draft.write_targets - set(changes)
    if unintended or missing:
        detail = f"unintended: {sorted(unintended)}; unchanged targets: {sorted(missing)}"
        return Verification(ok=False, reason="unintended_change", detail=detail, checks=checks)
    problems = policy_violations(domain, draft.actions, draft.user_id)
    if problems:
        return Verification(ok=False, reason="policy", detail="; ".join(problems), checks=checks)
    again = _replay(domain, draft.actions)[0]
    checks["state_hash"] = state_hash
    if again != state_hash:
        return Verification(ok=False, reason="nondeterministic", detail=f"{state_hash} != {again}", checks=checks)
    checks["item_order_sensitive"] = item_order_sensitive(domain, draft.actions)
    if check_tau2:
        tau2 = score_with_tau2(task, gold_trajectory(domain, task), "user_stop")
        checks["tau2_gold_reward"] = tau2.reward
        if tau2.reward != 1.0:
            return Verification(ok=False, reason="tau2_reward", detail=str(tau2.breakdown), checks=checks)
    if check_scripted:
        outcome = play_scripted(domain, task, evaluator)
        reward = outcome.reward.reward if outcome.reward is not None else 0.0
        checks["scripted_reward"] = reward
        checks["scripted_steps"] = outcome.steps
        if reward != 1.0:
            detail = f"termination {outcome.termination}, reward {outcome.reward}"
            return Verification(ok=False, reason="scripted_unplayable", detail=detail, checks=checks)
    return Verification(ok=True, checks=checks)
