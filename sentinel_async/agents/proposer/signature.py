"""Canonical task signatures for deduplication: intent kinds, tool sequence, records touched, DB-diff hash.

The signature is computed from the gold actions alone (replayed on a fresh fork), so generated and benchmark
tasks are compared on the same footing.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from sentinel_async.agents.scripted.user_script import KIND_BY_TOOL, LOOKUP_TOOLS
from sentinel_async.messages import ToolCall
from sentinel_async.tools.base import GoldAction
from sentinel_async.tools.retail import RetailDomain

TableKey = tuple[str, str]


class SignatureParts(msgspec.Struct, frozen=True, kw_only=True):
    """What a signature hashes (kept readable for reports)."""

    kinds: tuple[str, ...]
    tools: tuple[str, ...]
    records: tuple[str, ...]
    diff_hash: str
    infos: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self, order="deterministic")).hexdigest()


def diff_hash(changes: Mapping[TableKey, str | None]) -> str:
    """A hash of a fork's changed entities (empty diff: the hash of an empty list)."""
    rows = sorted([table, key, entry or ""] for (table, key), entry in changes.items())
    return hashlib.sha256(msgspec.json.encode(rows)).hexdigest()


def signature_parts(
    actions: Sequence[GoldAction], changes: Mapping[TableKey, str | None], infos: Iterable[str] = ()
) -> SignatureParts:
    """The canonical parts of a task: its write kinds (plus "info"), tools, records and DB diff."""
    infos = tuple(sorted(i.lower() for i in infos))
    kinds = sorted({KIND_BY_TOOL[a.name] for a in actions if a.name in KIND_BY_TOOL} | ({"info"} if infos else set()))
    records: set[str] = set()
    for action in actions:
        for key in ("user_id", "order_id", "email"):
            value = action.arguments.get(key)
            if isinstance(value, str):
                records.add(f"{key}:{value.lower()}")
    return SignatureParts(
        kinds=tuple(kinds),
        tools=tuple(a.name for a in actions if a.name not in LOOKUP_TOOLS),
        records=tuple(sorted(records)),
        diff_hash=diff_hash(changes),
        infos=infos,
    )


def replay_changes(domain: RetailDomain, actions: Sequence[GoldAction]) -> dict[TableKey, str | None]:
    """The entities that the gold actions change, replayed on a fresh fork."""
    env = domain.new_environment()
    for index, action in enumerate(actions):
        if action.requestor == "assistant":
            env.call(ToolCall(id=f"sig_{index}", name=action.name, arguments=dict(action.arguments)))
    return env.changes()


@functools.cache
def _benchmark_signatures(domain: RetailDomain) -> frozenset[str]:
    out = set()
    for task in domain.tasks("base"):
        actions = task.gold_actions
        out.add(signature_parts(actions, replay_changes(domain, actions), task.communicate_info).signature)
    return frozenset(out)


def benchmark_signatures(domain: RetailDomain) -> frozenset[str]:
    """The signatures of the 114 benchmark tasks (cached per domain object)."""
    return _benchmark_signatures(domain)
