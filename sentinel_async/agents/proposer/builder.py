"""The building blocks of generation: kinds, targeting, recipes, drafts, and the trajectory-first builder.

`GoldBuilder` accumulates gold actions for one user and executes each on a private fork as it is added, so
every intent is built against the state the previous ones left; a call that fails raises `UnfitError`.
"""

from __future__ import annotations

import random
from typing import Any, Literal, get_args

import msgspec

from sentinel_async.agents.proposer.sampling import RecordPool
from sentinel_async.agents.scripted.user_script import Identity, Intent, UserScript, intent_from_call
from sentinel_async.messages import ToolCall, ToolOutcome
from sentinel_async.tools.base import GoldAction
from sentinel_async.tools.retail import RetailDomain

DraftKind = Literal[
    "cancel",
    "modify_items",
    "modify_address",
    "modify_payment",
    "modify_user_address",
    "return",
    "exchange",
    "info",
    "refusal",
    "transfer",
]
DRAFT_KINDS: tuple[DraftKind, ...] = get_args(DraftKind)
CANCEL_REASONS = ("no longer needed", "ordered by mistake")
TableKey = tuple[str, str]


class Targeting(msgspec.Struct, frozen=True, kw_only=True):
    """How a recipe stresses a pattern. `items`: items per item intent (0: one or two at random)."""

    items: int = 0
    similar: bool = False  # variants one option apart; orders with several items of one product
    give_user_id: bool = False  # the customer offers its user id (authentication must still happen)
    conditional_confirmation: bool = False  # the request is phrased conditionally; a yes comes only later
    gift_card: bool = False  # refunds and payments go through a gift card
    paypal: bool = False  # refunds and payments go through a PayPal account (returns: of orders paid with one)
    unknown_order: bool = False  # the customer does not know the order id: the agent must look through orders
    auth: Literal["email", "name_zip", "any"] = "any"


class Recipe(msgspec.Struct, frozen=True, kw_only=True):
    """The intent kinds of one task (in conversation order) and their targeting; `label` names it."""

    label: str
    kinds: tuple[DraftKind, ...]
    targeting: Targeting = Targeting()


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """A generated task before verification: gold actions, scripted customer, facts, intended changes."""

    recipe: Recipe
    user_id: str
    actions: tuple[GoldAction, ...]
    script: UserScript
    communicate_info: tuple[str, ...] = ()
    allowed_changes: frozenset[TableKey] = frozenset()
    write_targets: frozenset[TableKey] = frozenset()
    order_ids: tuple[str, ...] = ()


class UnfitError(Exception):
    """Raised inside a generator when the chosen user's state cannot carry the intent (try another user)."""


class GoldBuilder:
    """Accumulates gold actions, executing each on a private fork; raises `UnfitError` when a call fails."""

    def __init__(self, domain: RetailDomain, pool: RecordPool, user_id: str, rng: random.Random, t: Targeting):
        self.domain, self.pool, self.user_id, self.rng, self.t = domain, pool, user_id, rng, t
        self.env = domain.new_environment()
        self.actions: list[GoldAction] = []
        self.intents: list[Intent] = []
        self.infos: list[str] = []
        self.allowed: set[TableKey] = set()
        self.targets: set[TableKey] = set()
        self.used_orders: list[str] = []
        self._reads: set[tuple[str, str]] = set()

    @property
    def user(self) -> Any:
        return self.env.db.users[self.user_id]

    def order(self, order_id: str) -> Any:
        return self.env.db.orders[order_id]

    def call(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        action = GoldAction(action_id=f"gen_{len(self.actions)}", name=name, arguments=args)
        outcome = self.env.call(ToolCall(id=action.action_id, name=name, arguments=args))
        if outcome.error:
            raise UnfitError(f"{name} failed: {outcome.content}")
        self.actions.append(action)
        return outcome

    def read(self, name: str, key: str, value: str) -> None:
        if (name, value) not in self._reads:
            self._reads.add((name, value))
            self.call(name, {key: value})

    def authenticate(self) -> Identity:
        user = self.domain.users[self.user_id]
        method = self.t.auth if self.t.auth != "any" else self.rng.choice(("email", "name_zip"))
        by_name = {"first_name": user.name.first_name, "last_name": user.name.last_name, "zip": user.address.zip}
        if (
            method == "name_zip"
            and self.env.call(ToolCall(id="probe", name="find_user_id_by_name_zip", arguments=by_name)).content
            != self.user_id
        ):
            method = "email"  # another user shares the name and zip
        if method == "email":
            self.call("find_user_id_by_email", {"email": user.email})
        else:
            self.call("find_user_id_by_name_zip", by_name)
        self.read("get_user_details", "user_id", self.user_id)
        return Identity(
            user_id=self.user_id,
            first_name=user.name.first_name,
            last_name=user.name.last_name,
            zip=user.address.zip,
            email=user.email,
            method=method,
        )

    def pick_order(self, statuses: tuple[str, ...], fits: Any = None) -> Any:
        """A random allowed order of the user in one of `statuses` (and passing `fits`), read as the gold reads."""
        candidates = [
            o
            for o in self.pool.orders_of(self.user_id)
            if o.order_id not in self.used_orders
            and self.order(o.order_id).status in statuses
            and (fits is None or fits(self.order(o.order_id)))
        ]
        if not candidates:
            raise UnfitError(f"no {'/'.join(statuses)} order")
        order = self.rng.choice(candidates)
        self.used_orders.append(order.order_id)
        if self.t.unknown_order:  # the agent looks through the user's orders until it finds the one meant
            for other in self.domain.users[self.user_id].orders:
                if self.pool.allowed_order(other):
                    self.read("get_order_details", "order_id", other)
                if other == order.order_id:
                    break
        self.read("get_order_details", "order_id", order.order_id)
        return self.order(order.order_id)

    def write(self, name: str, args: dict[str, Any], changes: set[TableKey]) -> None:
        self.intents.append(
            intent_from_call(self.domain, self.env.db, ToolCall(id="x", name=name, arguments=args), self.user_id)
        )
        self.call(name, args)
        self.allowed |= changes
        self.targets.add(("users", self.user_id) if name == "modify_user_address" else ("orders", args["order_id"]))

    def is_gift_card(self, payment_method_id: str) -> bool:
        return payment_method_id.startswith("gift_card")

    def is_paypal(self, payment_method_id: str) -> bool:
        return payment_method_id.startswith("paypal")

    def user_key(self, *payment_ids: str) -> set[TableKey]:
        """The user record, when a gift card's balance moves."""
        return {("users", self.user_id)} if any(self.is_gift_card(p) for p in payment_ids) else set()
