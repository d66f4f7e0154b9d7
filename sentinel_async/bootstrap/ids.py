"""Ids as text to copy: every id's digits renamed per conversation (`rollout.rename_guide_ids`).

A guide episode recorded with the task's own ids teaches those ids: after a few updates on one proposed task, a
1M-parameter policy proposed the task's item (`4716977452`) in test tasks about other products (exp27). Renamed
per conversation, the same guide teaches writing the digits the conversation shows, the way the bootstrap's
slot-copy exercises do. Retail ids are digit runs of four or more (orders `#W2378156`, items and products ten
digits, payment methods `paypal_7644869`, user ids `yusuf_rossi_9620`, zip codes); prices and amounts
(`1234.56`) are left as they are.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from sentinel_async.bootstrap.names import TextRenaming
from sentinel_async.messages import ChatMessage

_ID_DIGITS = re.compile(r"(?<!\d)(?<!\d\.)\d{4,}(?!\d)(?!\.\d)")
"""Four or more digits, not part of a decimal number."""


class IdRenaming(TextRenaming):
    """Each id's digit run replaced by other digits of the same length, the same way wherever it occurs.

    The map is a function of `seed` and the digits alone (not of the order they are met in), so every message of a
    conversation, renamed on its own, agrees with the others. A leading digit that is not zero stays non-zero."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._mapping: dict[str, str] = {}

    def text(self, text: str) -> str:
        """`text` with the digits of every id renamed."""
        return _ID_DIGITS.sub(lambda match: self.digits(match.group(0)), text)

    def digits(self, digits: str) -> str:
        """The renamed form of one digit run."""
        renamed = self._mapping.get(digits)
        if renamed is None:
            rng = random.Random(f"{self.seed}:{digits}")
            first = rng.choice("123456789") if digits[0] != "0" else "0"
            renamed = first + "".join(rng.choice("0123456789") for _ in digits[1:])
            self._mapping[digits] = renamed
        return renamed


PAYMENT_KINDS = ("credit_card", "paypal", "gift_card")
_KIND_PREFIX = re.compile(r"(?<![A-Za-z_])(credit_card|paypal|gift_card)(?=_\d)")
_KIND_SOURCE = re.compile(r'("source":\s*"|(?<![A-Za-z_])source )(credit_card|paypal|gift_card)(?![A-Za-z_])')
"""A payment method's kind as tau2's JSON (`"source": "paypal"`) and the lines view (`source paypal, id ...`)
write it."""
_KIND_SAID = re.compile(
    r"\bmy (?:PayPal account|gift card|[A-Z][a-z]+ card ending in \d{4}) \((credit_card|paypal|gift_card)(_\d+)\)"
)
"""A payment method as the scripted customer names it (`user_script.PaymentMethod.describe`): `my PayPal account
(paypal_7644869)`, `my gift card (gift_card_...)`, `my Visa card ending in 1234 (credit_card_...)`."""
_CARD_BRANDS = ("visa", "mastercard")


class PaymentKindRenaming(TextRenaming):
    """Payment methods' kinds permuted at random per conversation (`rollout.rename_guide_payment_kinds`), in ids
    (`paypal_7644869` -> `gift_card_7644869`) and tool results' `"source"` (JSON or lines); the words around them
    ("my PayPal account") stay, unless `say_kinds`: then the customer names each method by its new kind (`my gift
    card (gift_card_7644869)`), so words and id agree again. Also applied to a bootstrap's demonstrations
    (`BootstrapConfig.permute_payment_kinds`, `BootstrapConfig.say_payment_kinds`).

    A curriculum aimed at wrong payments is mostly one kind (PayPal refunds, say), and a small policy trained on
    it learns to write that kind rather than to copy the one the conversation shows (exp27, exp29: `paypal_`
    where the customer's id is `credit_card_`, with the digits right). Permuted, a guide's kind says nothing but
    what the conversation's ids say."""

    def __init__(self, seed: int, *, say_kinds: bool = False, mapping: dict[str, str] | None = None) -> None:
        if mapping is None:
            rng = random.Random(f"{seed}:payment-kinds")
            mapping = dict(zip(PAYMENT_KINDS, rng.sample(PAYMENT_KINDS, len(PAYMENT_KINDS)), strict=True))
        elif not sorted(mapping) == sorted(mapping.values()) == sorted(PAYMENT_KINDS):
            raise ValueError(f"not a permutation of {PAYMENT_KINDS}: {mapping}")
        self.mapping = dict(mapping)
        self.seed = seed
        self.say_kinds = say_kinds

    def text(self, text: str) -> str:
        """`text` with every payment method's kind mapped (and, with `say_kinds`, the customer's name for it)."""
        if self.say_kinds:
            text = _KIND_SAID.sub(self._said, text)
        text = _KIND_PREFIX.sub(lambda match: self.mapping[match.group(1)], text)
        return _KIND_SOURCE.sub(lambda match: match.group(1) + self.mapping[match.group(2)], text)

    def _said(self, match: re.Match[str]) -> str:
        """The customer's words for the mapped kind, the id's kind left for `_KIND_PREFIX` to map."""
        from sentinel_async.agents.scripted.user_script import PaymentMethod

        kind, digits = match.groups()
        new_kind = self.mapping[kind]
        if new_kind == kind:
            return match.group(0)
        rng = random.Random(f"{self.seed}:{digits}")
        card = new_kind == "credit_card"
        return PaymentMethod(
            payment_method_id=f"{kind}{digits}",
            source=new_kind,
            brand=rng.choice(_CARD_BRANDS) if card else None,
            last_four=f"{rng.randrange(10_000):04d}" if card else None,
        ).describe()


def permute_payment_kinds(
    conversations: Sequence[Sequence[ChatMessage]], seed: int, *, say_kinds: bool = False
) -> list[list[ChatMessage]]:
    """Each conversation with its own random permutation of payment kinds (`PaymentKindRenaming`), drawn from
    `seed` in order: how a bootstrap's demonstrations are renamed (`BootstrapConfig.permute_payment_kinds`,
    `BootstrapConfig.say_payment_kinds`)."""
    rng = random.Random(f"{seed}:payment-kinds")
    return [PaymentKindRenaming(rng.randrange(2**32), say_kinds=say_kinds).conversation(c) for c in conversations]
