"""Injected mistakes and their recovery: demonstrations that show what to do after a tool error.

The bootstrap policy's commonest failure was not the first wrong id but what followed: its demonstrations never
showed a tool error, so after one (an order id with a wrong digit, "Error: Order not found") it wrote garbage
until the episode ran out of errors. `MistakeInjector` wraps the demonstrating expert: before some of its calls
that name a database id, it first makes the same call with that id mistyped the way a small model mistypes
(right prefix, wrong digits after it, never an id that exists), and then, after the error, the correct call.

The mistaken turn is not trained on: its tool call's id starts with `MISTAKE_PREFIX`, and
`sentinel_async.bootstrap.demos` leaves such turns out of the loss, so the policy learns the recovery only.

Measured on the `tiny` build (`DemoConfig.mistake_rate` 0.15): the model learnt to retry (a well-formed call
after 65% of tool errors, against none without) but never with the right id, and test pass^1 did not improve
(0.025 against 0.050), so the option is off by default.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.protocols import Policy, PolicyTurn
from sentinel_async.bootstrap.entities import retail_entities
from sentinel_async.messages import ChatMessage, ToolCall

MISTAKE_PREFIX = "mistake_"
"""The tool-call id prefix of an injected mistake (its turn is masked out of the loss)."""

ID_ARGUMENTS = ("order_id", "product_id", "item_ids", "new_item_ids")
"""Arguments whose values are database ids a model copies digit by digit."""


def is_mistake(message: ChatMessage) -> bool:
    """Whether an assistant message is an injected mistake."""
    return any(call.id.startswith(MISTAKE_PREFIX) for call in message.tool_calls)


def mistype(value: str, rng: random.Random, known: Collection[str], *, attempts: int = 20) -> str | None:
    """`value` with a digit changed (and, half the time, every digit after it redrawn); never a `known` id.

    The digits before the change are kept, as in a model's copy that goes wrong part-way. None when `value` has
    no digit or every attempt hit a known id.
    """
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    if not positions:
        return None
    for _ in range(attempts):
        chars = list(value)
        start = positions[rng.randrange(len(positions))]
        chars[start] = rng.choice([d for d in "0123456789" if d != value[start]])
        if rng.random() < 0.5:
            for i in positions:
                if i > start:
                    chars[i] = rng.choice("0123456789")
        mistyped = "".join(chars)
        if mistyped not in known:
            return mistyped
    return None


def mistaken_call(call: ToolCall, rng: random.Random, known: Collection[str]) -> ToolCall | None:
    """`call` with one of its id arguments mistyped (None when it names no id)."""
    slots: list[tuple[str, int | None]] = []
    for name in ID_ARGUMENTS:
        value = call.arguments.get(name)
        if isinstance(value, str):
            slots.append((name, None))
        elif isinstance(value, list):
            slots.extend((name, index) for index, item in enumerate(value) if isinstance(item, str))
    if not slots:
        return None
    name, index = slots[rng.randrange(len(slots))]
    value = call.arguments[name] if index is None else call.arguments[name][index]
    wrong = mistype(str(value), rng, known)
    if wrong is None:
        return None
    arguments = dict(call.arguments)
    if index is None:
        arguments[name] = wrong
    else:
        arguments[name] = [wrong if i == index else v for i, v in enumerate(arguments[name])]
    return msgspec.structs.replace(call, id=f"{MISTAKE_PREFIX}{call.id}", arguments=arguments)


class MistakeInjector:
    """A `Policy` wrapper: with probability `rate`, a call naming an id is preceded by the same call mistyped.

    `known` holds every id of the database (a mistyped id must fail, so that the tool answers with an error);
    `seed` makes the injected mistakes reproducible.
    """

    def __init__(self, policy: Policy, *, rate: float, known: Collection[str], seed: int) -> None:
        self.policy = policy
        self.rate = rate
        self.known = known
        self.rng = random.Random(seed)
        self._held: PolicyTurn | None = None

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        if self._held is not None:
            turn, self._held = self._held, None
            return turn
        turn = await self.policy.act(conversation, tools)
        calls = turn.message.tool_calls
        if len(calls) != 1 or self.rng.random() >= self.rate:
            return turn
        wrong = mistaken_call(calls[0], self.rng, self.known)
        if wrong is None:
            return turn
        self._held = turn
        return PolicyTurn(message=ChatMessage(role="assistant", tool_calls=(wrong,)))


def database_ids(db: Any) -> frozenset[str]:
    """Every order, product and item id of a retail database."""
    entities = retail_entities(db)
    return frozenset(value for kind in ("order", "product", "item") for value in entities[kind])
