"""Customers' names as text to copy: renamed per conversation, and (for `BootstrapConfig.spell_names`) never one
token each.

Tau2's retail database has 500 customers but only 30 first and 30 last names, so each name is a frequent word
and byte-level BPE makes it one token. Renamed at random per sample (`permute_names`), those 60 tokens are used
alike everywhere, and copying one means telling apart tokens whose embeddings training keeps alike: measured on
the default build, the name tokens of guide lookups sit at log-probs of -2 to -4 (a guess among 30 names is -3.4),
and 0 of 35 test name-and-zip lookups are right, while a ten-digit id, ten common tokens, is copied. The same held
for ids as single tokens (`entities`: the right kind of id, never the right one). With `spell_names` the
tokenizer is trained on text with every name removed, so a name is written with pieces shared by other words, and
each demonstration is renamed as text (`Renaming`) to other names of the database (optionally also
`synthetic_names`), so a name can only be copied, piece by piece, the way ids are.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from sentinel_async.messages import ChatMessage, ToolCall

_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "br", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "n", "r", "s", "l")


def synthetic_names(count: int, seed: int, *, avoid: Iterable[str] = ()) -> list[str]:
    """`count` distinct pronounceable names of two or three syllables ("Tousan", "Beimiral"), none in `avoid`."""
    rng = random.Random(seed)
    taken = {name.lower() for name in avoid}
    names: list[str] = []
    while len(names) < count:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((2, 2, 3)))]
        name = ("".join(syllables) + rng.choice(_CODAS)).capitalize()
        if name.lower() not in taken:
            taken.add(name.lower())
            names.append(name)
    return names


class NamePool(msgspec.Struct, frozen=True, kw_only=True):
    """Where a renaming maps names from (`sources`: the database's) and to (`targets`), by part."""

    first_sources: tuple[str, ...]
    last_sources: tuple[str, ...]
    first_targets: tuple[str, ...]
    last_targets: tuple[str, ...]
    kept: frozenset[str] = frozenset()
    """Forms never renamed: they are also words of the catalogue or the policy (a surname that is a colour)."""

    @property
    def forms(self) -> list[str]:
        """Every name that can occur, as said and in lower case (emails and user ids spell names so)."""
        names = {*self.first_sources, *self.last_sources, *self.first_targets, *self.last_targets}
        return sorted({form for name in names for form in (name, name.lower())} - self.kept)


def retail_name_pool(db: Any, catalogue: str = "", *, synthetic: int = 0, seed: int = 0) -> NamePool:
    """The database's first and last names, mapped to themselves and `synthetic` made-up names per part (none a
    word of `catalogue`, see `entities.catalogue_text`, or of the product catalogue); a database name that is such
    a word is kept as it is."""
    firsts = sorted({user.name.first_name for user in db.users.values()})
    lasts = sorted({user.name.last_name for user in db.users.values()})
    products = msgspec.json.encode([product.model_dump() for product in db.products.values()]).decode()
    words = set(re.findall(r"[A-Za-z]+", catalogue + products))
    made = synthetic_names(2 * synthetic, seed, avoid=[*firsts, *lasts, *words])
    kept = frozenset(form for name in [*firsts, *lasts] for form in (name, name.lower()) if form in words)
    return NamePool(
        first_sources=tuple(firsts),
        last_sources=tuple(lasts),
        first_targets=tuple(firsts + made[:synthetic]),
        last_targets=tuple(lasts + made[synthetic:]),
        kept=kept,
    )


def _word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Any of `words` not inside a longer word (digits and punctuation around it are fine: `mei.kovacs1234`).
    Every renaming drawn from one pool maps the same names, so the pattern is compiled once per set of words."""
    return _compiled_pattern(frozenset(words))


@functools.lru_cache(maxsize=16)
def _compiled_pattern(words: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=lambda w: (-len(w), w)))
    return re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])")


class TextRenaming:
    """A renaming of text, applied alike to messages and every string in their tool calls' arguments."""

    def text(self, text: str) -> str:
        raise NotImplementedError

    def message(self, message: ChatMessage) -> ChatMessage:
        """The message with its text and every string in its tool calls' arguments renamed."""
        calls = tuple(
            ToolCall(id=call.id, name=call.name, arguments=self._value(call.arguments)) for call in message.tool_calls
        )
        return msgspec.structs.replace(message, content=self.text(message.content), tool_calls=calls)

    def conversation(self, conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
        return [self.message(message) for message in conversation]

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self._value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._value(item) for item in value]
        return value


class Renaming(TextRenaming):
    """One consistent renaming of customers' names in text, messages and conversations."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self._pattern = _word_pattern(mapping) if mapping else None

    def text(self, text: str) -> str:
        """`text` with every mapped name replaced (whole words only, case as given)."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self.mapping[match.group(0)], text)


class ChainedRenaming(TextRenaming):
    """Several renamings applied one after another."""

    def __init__(self, *renamings: TextRenaming) -> None:
        self.renamings = renamings

    def text(self, text: str) -> str:
        for renaming in self.renamings:
            text = renaming.text(text)
        return text


def draw_renaming(pool: NamePool, rng: random.Random) -> Renaming:
    """A random one-to-one map of the database's first names onto the pool's first names (last names alike), in
    both cases; forms in `pool.kept` stay."""
    mapping: dict[str, str] = {}
    for sources, targets in ((pool.first_sources, pool.first_targets), (pool.last_sources, pool.last_targets)):
        for source, target in zip(sources, rng.sample(targets, len(sources)), strict=True):
            for before, after in ((source, target), (source.lower(), target.lower())):
                if before not in pool.kept:
                    mapping[before] = after
    return Renaming(mapping)


def strip_names(text: str, pool: NamePool) -> str:
    """`text` without any of the pool's names (the tokenizer's corpus, so that no name becomes a token)."""
    return _word_pattern(pool.forms).sub("", text)
