"""Which recipes stress which failure category, and the untargeted `general` baseline.

The Controller's categories (`FailureCategory` values) are matched by their string values, normalised (lower
case, runs of other characters as "_"), then by keywords, so "wrong item/variant", "wrong_item_or_variant" and
"WRONG_VARIANT" all reach the same recipes. An unknown category (e.g. "system_error", "unknown") falls back to
the general recipes. Where the pattern names a tool (`FailurePattern.subkey`), the family's recipes are narrowed
to the ones aimed at it (`focus`): a failed return gets return tasks, a product never looked up gets item swaps.
"""

from __future__ import annotations

import random
import re
from typing import Literal

from sentinel_async.agents.proposer.generators import DRAFT_KINDS, DraftKind, Recipe, Targeting

T = Targeting
WRITE_KINDS: tuple[DraftKind, ...] = tuple(k for k in DRAFT_KINDS if k not in ("info", "refusal", "transfer"))

TARGETED: dict[str, tuple[Recipe, ...]] = {
    "wrong_item": (
        Recipe(label="similar-variant-modify", kinds=("modify_items",), targeting=T(similar=True, items=1)),
        Recipe(label="similar-variant-exchange", kinds=("exchange",), targeting=T(similar=True, items=1)),
        Recipe(label="similar-items-return", kinds=("return",), targeting=T(similar=True, items=1)),
        Recipe(label="two-orders", kinds=("cancel", "modify_address")),
    ),
    "missing_items": (
        Recipe(label="multi-item-modify", kinds=("modify_items",), targeting=T(items=2)),
        Recipe(label="multi-item-exchange", kinds=("exchange",), targeting=T(items=2)),
        Recipe(label="multi-item-return", kinds=("return",), targeting=T(items=2)),
        Recipe(label="multi-item-similar-exchange", kinds=("exchange",), targeting=T(items=2, similar=True)),
    ),
    # Customers who authenticate by name and zip (where small policies fail: the name is miscopied, the lookup
    # finds no one) or who offer their user id (which must not replace authentication).
    "missing_authentication": tuple(
        Recipe(label=f"{label}-{kind}", kinds=(kind,), targeting=targeting)
        for label, targeting in (("name-zip", T(auth="name_zip")), ("user-id-given", T(give_user_id=True)))
        for kind in ("cancel", "return", "modify_address", "modify_user_address", "info")
    ),
    "write_without_confirmation": (
        Recipe(label="conditional-cancel", kinds=("cancel",), targeting=T(conditional_confirmation=True)),
        Recipe(label="conditional-return", kinds=("return",), targeting=T(conditional_confirmation=True)),
        Recipe(
            label="conditional-two-writes",
            kinds=("modify_payment", "modify_address"),
            targeting=T(conditional_confirmation=True),
        ),
    ),
    "policy_violation": (
        Recipe(label="refusal", kinds=("refusal",)),
        Recipe(label="refusal-then-cancel", kinds=("refusal", "cancel")),
        Recipe(label="gift-card-return", kinds=("return",), targeting=T(gift_card=True)),
        Recipe(label="payment-change", kinds=("modify_payment",)),
    ),
    "missing_lookup": (
        Recipe(label="unknown-order-modify", kinds=("modify_items",), targeting=T(unknown_order=True, items=1)),
        Recipe(label="unknown-order-exchange", kinds=("exchange",), targeting=T(unknown_order=True, items=1)),
        Recipe(label="unknown-order-cancel", kinds=("cancel",), targeting=T(unknown_order=True)),
        Recipe(label="price-question", kinds=("info",)),
    ),
    "wrong_information": (
        Recipe(label="fact-question", kinds=("info",)),
        Recipe(label="fact-then-cancel", kinds=("cancel", "info")),
        Recipe(label="refusal-with-status", kinds=("refusal",)),
    ),
    "premature_stop": (
        Recipe(label="three-requests", kinds=("cancel", "modify_address", "info")),
        Recipe(label="return-and-exchange", kinds=("return", "exchange")),
        Recipe(label="write-then-transfer", kinds=("modify_user_address", "transfer")),
        Recipe(label="transfer", kinds=("transfer",)),
    ),
    "misread_intent": (
        Recipe(label="return-and-exchange", kinds=("return", "exchange")),
        Recipe(label="exchange", kinds=("exchange",)),
        Recipe(label="modify-not-cancel", kinds=("modify_items",)),
    ),
    "wrong_item_sequence": (
        Recipe(label="multi-item-modify-ordered", kinds=("modify_items",), targeting=T(items=2)),
        Recipe(label="multi-item-similar-modify", kinds=("modify_items",), targeting=T(items=2, similar=True)),
    ),
    "wrong_payment": (
        Recipe(label="payment-change", kinds=("modify_payment",)),
        Recipe(label="gift-card-return", kinds=("return",), targeting=T(gift_card=True)),
        Recipe(label="gift-card-exchange", kinds=("exchange",), targeting=T(gift_card=True)),
        Recipe(label="gift-card-modify", kinds=("modify_items",), targeting=T(gift_card=True)),
        # Small policies write the kind they saw most ("credit_card_7644869" for the customer's
        # paypal_7644869): every kind of method is stressed, not only gift cards.
        Recipe(label="paypal-return", kinds=("return",), targeting=T(paypal=True)),
        Recipe(label="paypal-exchange", kinds=("exchange",), targeting=T(paypal=True)),
        Recipe(label="paypal-modify", kinds=("modify_items",), targeting=T(paypal=True)),
    ),
    "wrong_reason": (
        Recipe(label="cancel", kinds=("cancel",)),
        Recipe(label="refusal-then-cancel", kinds=("refusal", "cancel")),
        Recipe(label="two-cancels", kinds=("cancel", "cancel")),
    ),
    "wrong_address": (
        Recipe(label="order-address", kinds=("modify_address",)),
        Recipe(label="profile-address", kinds=("modify_user_address",)),
        Recipe(label="both-addresses", kinds=("modify_address", "modify_user_address")),
    ),
    "extra_write": (
        Recipe(label="refusal", kinds=("refusal",)),
        Recipe(label="fact-question", kinds=("info",)),
        Recipe(label="transfer", kinds=("transfer",)),
    ),
    "missing_transfer": (
        Recipe(label="transfer", kinds=("transfer",)),
        Recipe(label="write-then-transfer", kinds=("cancel", "transfer")),
    ),
    "protocol_error": (
        Recipe(label="two-writes", kinds=("cancel", "return")),
        Recipe(label="multi-item-modify", kinds=("modify_items",), targeting=T(items=2)),
        Recipe(label="address-and-payment", kinds=("modify_address", "modify_payment")),
    ),
}

TOOL_KINDS: dict[str, tuple[DraftKind, ...]] = {
    "cancel_pending_order": ("cancel",),
    "modify_pending_order_address": ("modify_address",),
    "modify_pending_order_items": ("modify_items",),
    "modify_pending_order_payment": ("modify_payment",),
    "modify_user_address": ("modify_user_address",),
    "return_delivered_order_items": ("return",),
    "exchange_delivered_order_items": ("exchange",),
    "transfer_to_human_agents": ("transfer",),
}
"""The request a write tool fulfils: a pattern keyed by a write (`FailurePattern.subkey`) is aimed at tasks
whose first request is that one."""

TOOL_RECIPES: dict[tuple[str, str], tuple[Recipe, ...]] = {
    # A product never looked up: swaps of one item, which need the product's variants and nothing else.
    ("missing_lookup", "get_product_details"): (
        Recipe(label="product-lookup-exchange", kinds=("exchange",), targeting=T(items=1)),
        Recipe(label="product-lookup-modify", kinds=("modify_items",), targeting=T(items=1)),
    ),
    # The gold's name-and-zip lookup never made as the customer said it (a miscopied name): authentication.
    ("missing_lookup", "find_user_id_by_name_zip"): tuple(
        r for r in TARGETED["missing_authentication"] if r.targeting.auth == "name_zip"
    ),
}
"""Recipes for a (family, tool) pair that its family's recipes do not aim at."""


def focus(fam: str, tool: str | None) -> tuple[Recipe, ...]:
    """The recipes of family `fam` aimed at `tool` (a pattern's sub-key): the pair's own (`TOOL_RECIPES`), else
    the family's recipes whose first request is the one the tool fulfils (`TOOL_KINDS`), else that request
    alone, unstressed; the whole family when the tool names no request (a protocol problem, a lookup)."""
    if tool is None:
        return TARGETED[fam]
    own = TOOL_RECIPES.get((fam, tool))
    if own is not None:
        return own
    kinds = TOOL_KINDS.get(tool)
    if kinds is None:
        return TARGETED[fam]
    aimed = tuple(r for r in TARGETED[fam] if r.kinds[0] in kinds)
    if aimed:
        return aimed
    return tuple(Recipe(label=f"{fam.replace('_', '-')}-{kind.replace('_', '-')}", kinds=(kind,)) for kind in kinds)


# Keywords (in the normalised category) -> recipe family; the first match wins.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("auth", "missing_authentication"),
    ("confirm", "write_without_confirmation"),
    ("without_yes", "write_without_confirmation"),
    ("without_a_yes", "write_without_confirmation"),
    ("write_without", "write_without_confirmation"),
    ("unconfirmed", "write_without_confirmation"),
    ("no_yes", "write_without_confirmation"),
    ("sequence", "wrong_item_sequence"),
    ("missing_item", "missing_items"),
    ("incomplete", "missing_items"),
    ("multi_item", "missing_items"),
    ("variant", "wrong_item"),
    ("wrong_item", "wrong_item"),
    ("wrong_order", "wrong_item"),
    ("grounding", "wrong_item"),
    ("argument", "wrong_item"),
    ("payment", "wrong_payment"),
    ("refund", "wrong_payment"),
    ("reason", "wrong_reason"),
    ("address", "wrong_address"),
    ("extra_write", "extra_write"),
    ("missing_write", "premature_stop"),
    ("wrong_action", "misread_intent"),
    ("missing_transfer", "missing_transfer"),
    ("max_steps", "protocol_error"),
    ("too_many_errors", "protocol_error"),
    ("policy", "policy_violation"),
    ("lookup", "missing_lookup"),
    ("intermediate", "missing_lookup"),
    ("information", "wrong_information"),
    ("wrong_info", "wrong_information"),
    ("communicat", "wrong_information"),
    ("misread", "misread_intent"),
    ("intent", "misread_intent"),
    ("stop", "premature_stop"),
    ("transfer", "premature_stop"),
    ("protocol", "protocol_error"),
    ("malformed", "protocol_error"),
    ("format", "protocol_error"),
)


def normalise(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_")


def family(category: str) -> str | None:
    """The recipe family for a Controller category string (None: unknown, use the general recipes)."""
    key = normalise(category)
    if key in TARGETED:
        return key
    return next((fam for word, fam in _KEYWORDS if word in key), None)


def general_recipe(rng: random.Random) -> Recipe:
    """The untargeted baseline: one intent kind uniformly at random, sometimes a second one (no targeting)."""
    first = rng.choice(DRAFT_KINDS)
    kinds: tuple[DraftKind, ...] = (first,)
    if rng.random() < 0.3:
        second = rng.choice([k for k in DRAFT_KINDS if k != first])
        kinds = (first, second)
    return Recipe(label="general-" + "+".join(kinds), kinds=kinds)


Difficulty = Literal["stress", "plain"]
"""How hard a targeted recipe is: `stress` as `TARGETED` writes it (similar variants, unknown order ids,
conditional confirmations, two or three requests); `plain` keeps its first request and how the customer
authenticates, and drops the rest (`plain`)."""


def plain(recipe: Recipe) -> Recipe:
    """`recipe` without its stressors: its first request alone, the customer's way of authenticating kept."""
    targeting = Targeting(auth=recipe.targeting.auth, give_user_id=recipe.targeting.give_user_id)
    return Recipe(label=f"{recipe.label}-plain", kinds=recipe.kinds[:1], targeting=targeting)


def recipe_for(
    category: str | None, rng: random.Random, difficulty: Difficulty = "stress", tool: str | None = None
) -> Recipe:
    """A recipe for one candidate: a targeted one for a known category, aimed at `tool` when the pattern names
    one (`focus`; `plain` ones at that `difficulty`), else a general one."""
    fam = family(category) if category else None
    if fam is None:
        return general_recipe(rng)
    recipe = rng.choice(focus(fam, tool))
    return plain(recipe) if difficulty == "plain" else recipe
