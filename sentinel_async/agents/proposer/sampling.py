"""The records a Proposer may build tasks on: never the test split's, preferably no benchmark task's.

A benchmark task "uses" a user or an order when its gold actions name it (user id, order id, email, name +
zip lookups), when its instructions mention it (order ids, emails, user ids), or when it is the user the task
is about (its derived scripted identity). The owner of a used order is used too.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.scripted.user_script import derive_user_script
from sentinel_async.tools.base import Split, TaskSpec, UserInstructions
from sentinel_async.tools.retail import RetailDomain

_ORDER_ID = re.compile(r"#W\d{7}")
_WORD = re.compile(r"[A-Za-z0-9_]+")


class SplitRecords(msgspec.Struct, frozen=True, kw_only=True):
    """The users and orders that the tasks of one split use."""

    users: frozenset[str]
    orders: frozenset[str]

    def touches(self, user_ids: Iterable[str] = (), order_ids: Iterable[str] = ()) -> list[str]:
        """The given records that belong to this split (empty: none)."""
        hits = [u for u in user_ids if u in self.users]
        return hits + [o for o in order_ids if o in self.orders]


def _text(task: TaskSpec) -> str:
    instructions = task.user_scenario.instructions
    if isinstance(instructions, UserInstructions):
        parts = (
            instructions.reason_for_call,
            instructions.known_info,
            instructions.unknown_info,
            instructions.task_instructions,
        )
        return " ".join(p for p in parts if p)
    return instructions


def split_records(domain: RetailDomain, split: Split) -> SplitRecords:
    """Every user and order that the tasks of `split` use (see the module docstring)."""
    emails = {user.email.lower(): uid for uid, user in domain.users.items()}
    users: set[str] = set()
    orders: set[str] = set()
    for task in domain.tasks(split):
        for action in task.gold_actions:
            args = action.arguments
            if isinstance(args.get("user_id"), str):
                users.add(args["user_id"])
            if isinstance(args.get("order_id"), str):
                orders.add(args["order_id"])
            if isinstance(args.get("email"), str) and args["email"].lower() in emails:
                users.add(emails[args["email"].lower()])
            if action.name == "find_user_id_by_name_zip":
                users.update(_by_name_zip(domain, args))
        text = _text(task)
        orders.update(_ORDER_ID.findall(text))
        lowered = text.lower()
        users.update(uid for email, uid in emails.items() if email in lowered)
        users.update(word for word in _WORD.findall(text) if word in domain.users)
        with contextlib.suppress(ValueError):
            users.add(derive_user_script(task, domain).identity.user_id)
    users.update(domain.orders[o].user_id for o in orders if o in domain.orders)
    return SplitRecords(users=frozenset(users), orders=frozenset(orders))


def _by_name_zip(domain: RetailDomain, args: dict[str, object]) -> Iterator[str]:
    first, last, zip_code = (str(args.get(k, "")).lower() for k in ("first_name", "last_name", "zip"))
    for uid, user in domain.users.items():
        name = user.name
        if name.first_name.lower() == first and name.last_name.lower() == last and user.address.zip == zip_code:
            yield uid


class RecordPool:
    """The users a generator may pick, in tiers: untouched by every benchmark task, then train-only users.

    Users of the test split (and owners of its orders) are never offered; neither are orders it uses.
    """

    def __init__(self, domain: RetailDomain, *, allow_train_users: bool = True) -> None:
        self.domain = domain
        self.test = split_records(domain, "test")
        self.benchmark = split_records(domain, "base")
        ids = sorted(domain.users)
        self.untouched: tuple[str, ...] = tuple(u for u in ids if u not in self.benchmark.users)
        train_only = (u for u in ids if u in self.benchmark.users and u not in self.test.users)
        self.train_only: tuple[str, ...] = tuple(train_only) if allow_train_users else ()

    @staticmethod
    @functools.cache
    def of(domain: RetailDomain) -> RecordPool:
        """The pool of a domain, built once per domain object."""
        return RecordPool(domain)

    def allowed_user(self, user_id: str) -> bool:
        return user_id in self.domain.users and user_id not in self.test.users

    def allowed_order(self, order_id: str) -> bool:
        order = self.domain.orders.get(order_id)
        return order is not None and order_id not in self.test.orders and self.allowed_user(order.user_id)

    def users(self, rng: random.Random, *, avoid: Sequence[str] = ()) -> Iterator[str]:
        """Allowed users in a seeded random order: untouched ones first, those in `avoid` last in each tier."""
        avoided = set(avoid)
        for tier in (self.untouched, self.train_only):
            shuffled = list(tier)
            rng.shuffle(shuffled)
            yield from (u for u in shuffled if u not in avoided)
            yield from (u for u in shuffled if u in avoided)

    def orders_of(self, user_id: str) -> list[Any]:
        """The user's allowed orders (tau2 `Order` models, read only), in the profile's order."""
        user = self.domain.users[user_id]
        return [self.domain.orders[o] for o in user.orders if self.allowed_order(o)]
