"""Reusing the KV cache of an earlier generation whose tokens start the next prompt (multi-turn prefill).

A chat turn's prompt is the previous turn's prompt, the tokens sampled then, and the new messages. Without
reuse, every turn prefills the whole conversation again, which dominates decoding time once a conversation
holds a few thousand tokens. `PrefixCache` keeps the caches of recent generations (least recently stored
dropped first) and hands out the one covering the longest prefix of a new prompt; the caller then prefills
only the rest. An entry is handed out once (its cache is extended in place by the next forward pass), and
every entry must be dropped when the weights change (`clear`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any


class PrefixCache:
    """Up to `capacity` (token ids, KV cache) pairs; `take` removes and returns the longest prefix match."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[tuple[int, ...], Any]] = OrderedDict()
        self._next = 0
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, prompt_ids: Sequence[int]) -> tuple[int, Any] | None:
        """(tokens covered, cache) of the entry that is the longest proper prefix of `prompt_ids`, removed from
        the store; None when no entry is a prefix."""
        best: int | None = None
        best_len = 0
        prompt = tuple(prompt_ids)
        for key, (ids, _) in self._entries.items():
            n = len(ids)
            if best_len < n < len(prompt) and prompt[:n] == ids:
                best, best_len = key, n
        if best is None:
            return None
        _, cache = self._entries.pop(best)
        self.hits += 1
        self.reused_tokens += best_len
        return best_len, cache

    def put(self, token_ids: Sequence[int], cache: Any) -> None:
        """Store the cache that holds exactly `token_ids` (dropping the oldest entry beyond capacity)."""
        if self.capacity == 0:
            return
        self._entries[self._next] = (tuple(token_ids), cache)
        self._next += 1
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (the weights changed)."""
        self._entries.clear()
