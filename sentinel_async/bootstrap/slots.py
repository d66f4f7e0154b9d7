"""Slot-copy warm-up: short synthetic exercises that make a from-scratch model learn to copy an id.

A conversation asks the policy to write ids it has read: the order id the user gave, the user id a lookup
returned, an item id from an order. A model trained from random weights on whole conversations sits on a
plateau where it writes every token of a call but the id's digits (measured here: 0 exact calls after 25
CPU-minutes, 1.3M parameters, digits one per token; the same on 300-token turn windows after 12 minutes).
On short exercises that say an id and, a few tokens later, ask for it in a tool call, the same model learns to
copy within 2-4 minutes (exact copies 0% -> 30% between 300 and 400 steps of 32 exercises), and the skill carries
over to the demonstrations that follow.

Each exercise: a little filler cut from the demonstrations, then one to `max_slots` values (ids, names, zip
codes), each said in a short sentence (" my zip is 28236.") after distractors of its kind, then a tool call
that names them all in a random order; the loss is on the values in the call alone. Hard exercises (for
`SFTConfig.slot_hard_from` on) drill long ids most, among up to three distractors that share their prefix.
Kind contests (`kind_contest`) say the same digits under another payment kind first, so only a copied kind is
right. Recall exercises (`SlotCopy.recall`, a share of the hard ones) are a product lookup in miniature: an order's
item lines, the customer naming one item, then the product id on that item's line. See docs/bootstrap-log.md
for what each kind of exercise changed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from sentinel_async.bootstrap.demos import Sample

RETAIL_SLOT_KEYS = {kind: "payment_method_id" for kind in ("credit_card", "paypal", "gift_card")}
"""The key an exercise's call names a retail value at, where it is not the value's kind: as in the tools,
every kind of payment method goes to `payment_method_id`, so the key cannot tell the kind and the call must copy
it (measured on the default build, whose exercises named the kind in the key: refunds written to `paypal_...`
where the customer, and the confirmation just before, said `gift_card_...`)."""


def retail_slot_values(db: Any, *, addresses: bool = False) -> dict[str, list[str]]:
    """What a retail conversation copies, by kind: every database id (`retail_entities`) and customer names;
    with `addresses`, also streets (`address1`), cities and states, at the keys the address tools use."""
    from sentinel_async.bootstrap.entities import retail_addresses, retail_entities

    values = retail_entities(db)
    values["first_name"] = sorted({user.name.first_name for user in db.users.values()})
    values["last_name"] = sorted({user.name.last_name for user in db.users.values()})
    if addresses:
        found = retail_addresses(db)
        values["address1"] = sorted({address.address1 for address in found})
        values["city"] = sorted({address.city for address in found})
        values["state"] = sorted({address.state for address in found})
    return values


class ListingRow(msgspec.Struct, frozen=True):
    """One item of an order as `retail_lines` shows it, and the two ids on its line."""

    line: str
    description: str
    item_id: str
    product_id: str


def retail_listings(db: Any) -> list[list[ListingRow]]:
    """Every order's items as the policy reads them (`retail_lines`), one list per order with two or more."""
    from sentinel_async.tools.retail.views import item_line

    listings: list[list[ListingRow]] = []
    for order_id in sorted(db.orders):
        items = db.orders[order_id].items
        if len(items) < 2:
            continue
        lines = [item_line(item.model_dump()) for item in items]
        rows = [
            ListingRow(line, line.split(" item_id ", 1)[0], item.item_id, item.product_id)
            for line, item in zip(lines, items, strict=True)
        ]
        listings.append(rows)
    return listings


class SlotCopy:
    """Generates slot-copy exercises from a domain's values (`values`, by kind) and filler token sequences; a
    call names a value at its kind, or at `keys[kind]` where given (`RETAIL_SLOT_KEYS`), and recall exercises
    read `listings` (`retail_listings`)."""

    def __init__(
        self,
        tokenizer: Any,
        values: Mapping[str, Sequence[str]],
        filler: Sequence[Sequence[int]],
        *,
        max_filler: int = 10,
        max_distractors: int = 1,
        max_slots: int = 1,
        hard_slots: int = 1,
        hard_distractors: int = 3,
        near_distractors: float = 0.5,
        keys: Mapping[str, str] | None = None,
        listings: Sequence[Sequence[ListingRow]] = (),
        recall_share: float = 0.0,
        kind_contest: float = 0.0,
    ) -> None:
        kinds = [kind for kind, texts in values.items() if texts]
        if not kinds:
            raise ValueError("slot-copy exercises need at least one kind of value")
        if not any(filler):
            raise ValueError("slot-copy exercises need filler text")
        self.tokenizer = tokenizer
        self.kinds = kinds
        self.values = {kind: list(values[kind]) for kind in kinds}
        self.keys = {kind: (keys or {}).get(kind, kind) for kind in kinds}
        self.distinct_keys = len(set(self.keys.values()))
        self.filler = [ids for ids in filler if ids]  # references: the demonstrations are large
        self.max_filler = max_filler
        self.max_distractors = max_distractors
        self.max_slots = max_slots
        self.hard_slots = hard_slots
        self.hard_distractors = hard_distractors
        self.near_distractors = near_distractors
        self.listings = [list(rows) for rows in listings if len(rows) >= 2]
        if recall_share > 0 and not self.listings:
            raise ValueError("recall exercises need listings of two or more rows")
        self.recall_share = recall_share
        self.kind_contest = kind_contest
        self.key_peers = {kind: [k for k in kinds if k != kind and self.keys[k] == self.keys[kind]] for kind in kinds}
        lengths = [sum(len(self._encode(v)) for v in values[k][:50]) / len(values[k][:50]) for k in kinds]
        floor = sum(lengths) / len(lengths)  # short values (a name: one token) are still drilled half as often
        self.length_weights = [length + floor for length in lengths]

    def exercise(self, rng: random.Random, *, hard: bool = False, kind: str | None = None) -> Sample:
        """One exercise: 1..`max_slots` values (`hard_slots` in a hard one) said in sentences, then one call with
        them; the mask covers the values in the call. A `hard` one picks kinds by their length in tokens plus
        the mean length (long ids more often, one-token names still about half as often), says up to
        `hard_distractors` other values first with up to three times the filler between them, and makes
        `near_distractors` of them share a prefix with it. A `recall_share` of hard exercises are `recall` ones.
        With `kind`, the call names one value of that kind (what `CopyCheck` measures)."""
        if kind is not None and kind not in self.values:
            raise ValueError(f"no slot-copy values of kind {kind!r}; kinds: {', '.join(self.kinds)}")
        if kind is None and hard and self.recall_share > 0 and rng.random() < self.recall_share:
            return self.recall(rng)
        most = 1 if kind is not None else min(self.hard_slots if hard else self.max_slots, self.distinct_keys)
        count = rng.randint(1, most)
        weights = self.length_weights if hard else None
        kinds: list[str] = [] if kind is None else [kind]
        while len(kinds) < count:
            picked = rng.choices(self.kinds, weights)[0]
            if self.keys[picked] not in {self.keys[k] for k in kinds}:
                kinds.append(picked)
        chosen = {kind: rng.choice(self.values[kind]) for kind in kinds}
        filler = self.max_filler * (3 if hard else 1)
        ids = self._filler(rng, 1, filler)
        for kind in kinds:
            distractors = rng.randint(0, self.hard_distractors if hard else self.max_distractors)
            others = [self._distractor(rng, kind, chosen[kind], hard) for _ in range(distractors)]
            for other in others:
                ids += self._say(self._kind_of(kind, other), other) + self._filler(rng, 2, filler)
            ids += self._say(kind, chosen[kind]) + self._filler(rng, 0, self.max_filler)
        mask = [0] * len(ids)
        for index, kind in enumerate(rng.sample(kinds, len(kinds))):
            opening = '<tool_call>\n{"name": "find", "arguments": {' if index == 0 else '", '
            part = self._encode(f'{opening}"{self.keys[kind]}": "')
            copied = self._encode(chosen[kind])
            ids += part + copied
            mask += [0] * len(part) + [1] * len(copied)
        end = self._encode('"}}\n</tool_call>')
        return Sample(ids + end, mask + [0] * len(end))

    def recall(self, rng: random.Random) -> Sample:
        """A product lookup in miniature: an order's item lines, the customer naming one of them by description
        and item id, then the expert's cue and call (`product_cue`): `item_id <copied>, product_id <recalled>`,
        `get_product_details` with the product id. Loss on the item id and both product ids. The product id is
        the one on the line of the item id just copied: a key-value recall, which copying one value does not
        teach (measured on the default build: product lookups 0 of 29, the item id copied, the product id wrong
        from its first digits). With probability `near_distractors`, another line's item id shares a prefix
        with the chosen one, so the match must use more than the first digits."""
        rows = list(rng.choice(self.listings))
        rng.shuffle(rows)
        chosen = rng.choice(rows)
        decoy_item, decoy_product = self._near(rng, chosen.item_id), self._near(rng, chosen.product_id)
        if rng.random() < self.near_distractors and decoy_item != chosen.item_id:
            line = chosen.line.replace(f"item_id {chosen.item_id}", f"item_id {decoy_item}")
            line = line.replace(f"product_id {chosen.product_id}", f"product_id {decoy_product}")
            rows.insert(rng.randint(0, len(rows)), ListingRow(line, chosen.description, decoy_item, decoy_product))
        listing = "".join(f"\n  - {row.line}" for row in rows)
        ids = self._filler(rng, 0, self.max_filler) + self._encode(f"items:{listing}\n")
        ids += self._filler(rng, 0, self.max_filler)
        ids += self._encode(f" The item is {chosen.description}, item id {chosen.item_id}.")
        mask = [0] * len(ids)
        call = '\n<tool_call>\n{"name": "get_product_details", "arguments": {"product_id": "'
        for text, trained in (
            ("\nitem_id ", False),
            (chosen.item_id, True),
            (", product_id ", False),
            (chosen.product_id, True),
            (call, False),
            (chosen.product_id, True),
            ('"}}\n</tool_call>', False),
        ):
            part = self._encode(text)
            ids += part
            mask += [int(trained)] * len(part)
        return Sample(ids, mask)

    def batch(self, rng: random.Random, size: int, *, hard: bool = False, focus: Sequence[str] = ()) -> list[Sample]:
        """`size` exercises; with `focus`, half of them name one of those kinds (a kind the model fails)."""
        return [
            self.exercise(rng, hard=hard, kind=rng.choice(focus) if focus and rng.random() < 0.5 else None)
            for _ in range(size)
        ]

    def _distractor(self, rng: random.Random, kind: str, value: str, hard: bool) -> str:
        """Another value of `kind`; in a hard exercise, with probability `near_distractors`, a made-up one that
        shares a prefix with `value` (its digits after a random point redrawn): only a copy of the whole value
        is right. With `kind_contest`, first: `value` under another kind that shares its key (`paypal_7644869`
        for `gift_card_7644869`)."""
        peers = self.key_peers[kind]
        contest = hard and self.kind_contest > 0 and peers and value.startswith(f"{kind}_")
        if contest and rng.random() < self.kind_contest:  # no draw when off: builds without it stay as they were
            return rng.choice(peers) + value[len(kind) :]
        if not hard or sum(c.isdigit() for c in value) < 4 or rng.random() >= self.near_distractors:
            return rng.choice(self.values[kind])
        return self._near(rng, value)

    @staticmethod
    def _near(rng: random.Random, value: str) -> str:
        """`value` with its digits after a random point (at least one kept, one redrawn) drawn again; unchanged
        when it has fewer than two digits."""
        digits = [i for i, char in enumerate(value) if char.isdigit()]
        if len(digits) < 2:
            return value
        cut = rng.randint(1, len(digits) - 1)
        chars = list(value)
        for i in digits[cut:]:
            chars[i] = str(rng.randrange(10))
        return "".join(chars)

    def _kind_of(self, kind: str, value: str) -> str:
        """The kind `value` is written as: `kind`, or the peer whose prefix it has (a kind contest's distractor)."""
        return next((peer for peer in self.key_peers[kind] if value.startswith(f"{peer}_")), kind)

    def _say(self, kind: str, value: str) -> list[int]:
        return self._encode(f" my {kind.replace('_', ' ')} is {value}.")

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _filler(self, rng: random.Random, minimum: int, maximum: int) -> list[int]:
        source = rng.choice(self.filler)
        length = rng.randint(minimum, maximum)
        start = rng.randrange(max(1, len(source) - length))
        return list(source[start : start + length])
