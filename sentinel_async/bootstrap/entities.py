"""Entity tokens (an option, off by default): every id of the retail database is one token.

The idea: copying an id becomes a single attention lookup instead of a run of digits copied one after
another. Measured on the 1.3M model, it did not pay: the model learnt each id's *kind* (it wrote an order id
where one belonged) but kept writing the same one, 0% exact order ids after 1,000 steps, while digits one per
token with the slot-copy warm-up (`sentinel_async.bootstrap.slots`) learn to copy within minutes.

An id's embedding is learnt only where that id appears in training, and the test split's customers never do.
`permute_entities` addresses that and memorisation: each training conversation renames its ids by a random
one-to-one map within each kind (orders to orders, items to items, ...), so every id token is trained and no
id can be remembered, only copied.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

ENTITY_KINDS = ("order", "user", "item", "product", "credit_card", "paypal", "gift_card", "email", "zip")


def retail_entities(db: Any) -> dict[str, list[str]]:
    """Every id of a `RetailDB`, by kind (sorted, so the token ids are the same on every build)."""
    found: dict[str, set[str]] = {kind: set() for kind in ENTITY_KINDS}
    found["order"].update(db.orders)
    found["product"].update(db.products)
    for product in db.products.values():
        found["item"].update(product.variants)
    for order in db.orders.values():
        found["item"].update(item.item_id for item in order.items)
        found["zip"].add(order.address.zip)
    for user_id, user in db.users.items():
        found["user"].add(user_id)
        found["email"].add(user.email)
        found["zip"].add(user.address.zip)
        for method_id in user.payment_methods:
            kind = method_id.rsplit("_", 1)[0]
            found[kind if kind in found else "credit_card"].add(method_id)
    found["item"] -= found["product"]  # never two kinds for one string
    return {kind: sorted(values) for kind, values in found.items()}


def entity_token_groups(tokenizer: Any, entities: Mapping[str, Sequence[str]]) -> list[list[int]]:
    """The token ids of each kind of entity (entities that are not single tokens are left out)."""
    vocab = tokenizer.get_vocab()
    return [[vocab[text] for text in texts if text in vocab] for texts in entities.values()]


def catalogue_text(domain: Any) -> str:
    """The text every prompt shows whoever the customer is (the domain's policy and tool schemas): a token in it
    is never renamed."""
    return str(domain.policy()) + json.dumps(domain.tool_schemas())


def name_token_groups(tokenizer: Any, db: Any, other_text: str = "") -> list[list[int]]:
    """The token ids of customers' first names, last names, and both in lower case (as emails spell them), one
    group each; names that are not single tokens, tokens of more than one group, or tokens of the catalogue or
    `other_text` (a colour "brown", say) are left out.

    Renamed by `EntityPermuter`, a sample's customer becomes another one throughout (the user's words, the
    call, the tool's answer), so a model cannot answer with a name it remembers (measured on a windowed `tiny`
    build without it: "Ethan", the same first name, for 35 of 35 test customers)."""
    firsts = {user.name.first_name for user in db.users.values()}
    lasts = {user.name.last_name for user in db.users.values()}
    kinds = [firsts, lasts, {name.lower() for name in firsts}, {name.lower() for name in lasts}]
    vocab = tokenizer.get_vocab()
    groups = [{vocab[name] for name in names if name in vocab} for names in kinds]
    excluded = _shared_tokens(groups) | _catalogue_tokens(tokenizer, db, other_text)
    return [sorted(group - excluded) for group in groups]


def _shared_tokens(groups: Sequence[set[int]]) -> set[int]:
    """Tokens in more than one of `groups`."""
    return {token for i, group in enumerate(groups) for other in groups[i + 1 :] for token in group & other}


def _catalogue_tokens(tokenizer: Any, db: Any, other_text: str) -> set[int]:
    """The tokens of the product catalogue and of `other_text`: words that must never be renamed."""
    catalogue = json.dumps([product.model_dump() for product in db.products.values()]) + other_text
    return set(tokenizer(catalogue)["input_ids"])


def retail_addresses(db: Any) -> list[Any]:
    """Every address of a `RetailDB` (users' and orders')."""
    return [user.address for user in db.users.values()] + [order.address for order in db.orders.values()]


def address_token_groups(
    tokenizer: Any,
    db: Any,
    other_text: str = "",
    taken: Sequence[Sequence[int]] = (),
    streets_without_number: Sequence[str] = (),
) -> list[list[int]]:
    """The token ids of address words, one group per kind: street names ("Maple"), street types ("Drive"),
    city words and state codes, from the database's addresses (`retail_addresses`) and
    `streets_without_number` ("Maple Avenue": the streets of generated tasks). Tokens of the catalogue, of
    `other_text` (the policy, say) or of the `taken` groups (the names), and tokens of more than one kind, are
    left out.

    Renamed by `EntityPermuter`, a sample's new address is another one throughout, so a street has to be copied,
    not remembered (measured on the default `tiny` build without it: every test address change wrote the
    street the general tasks use most, "Cedar" or "Oak", where the customer said "Maple" or "Elm": 0 of 12)."""
    addresses = retail_addresses(db)
    streets: set[str] = set()
    types: set[str] = set()
    cities: set[str] = set()
    states: set[str] = set()
    for street in [address.address1 for address in addresses] + list(streets_without_number):
        words = [w for w in street.split() if w.isalpha()]
        if len(words) > 1:
            streets.update(words[:-1])
        types.update(words[-1:])
    for address in addresses:
        cities.update(address.city.split())
        states.add(address.state)
    vocab = tokenizer.get_vocab()
    groups = [{vocab[word] for word in words if word in vocab} for words in (streets, types, cities, states)]
    excluded = _shared_tokens(groups) | _catalogue_tokens(tokenizer, db, other_text)
    excluded |= {token for group in taken for token in group}
    return [sorted(group - excluded) for group in groups]


class EntityPermuter:
    """Renames entity tokens in a token sequence by a fresh random one-to-one map per kind."""

    def __init__(self, groups: Sequence[Sequence[int]]) -> None:
        self.groups = [list(group) for group in groups if len(group) > 1]
        self._kind = {token: index for index, group in enumerate(self.groups) for token in group}

    def __call__(self, ids: Sequence[int], rng: random.Random) -> list[int]:
        """`ids` with each entity token replaced consistently (same token in, same token out)."""
        mapping: dict[int, int] = {}
        taken: dict[int, set[int]] = {}
        for token in ids:
            kind = self._kind.get(token)
            if kind is None or token in mapping:
                continue
            group = self.groups[kind]
            used = taken.setdefault(kind, set())
            if len(used) >= len(group):
                mapping[token] = token
                continue
            choice = group[rng.randrange(len(group))]
            while choice in used:  # kinds hold hundreds of ids; a conversation names a few
                choice = group[rng.randrange(len(group))]
            used.add(choice)
            mapping[token] = choice
        return [mapping.get(token, token) for token in ids]
