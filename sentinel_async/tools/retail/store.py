"""The retail database: parsed once per process, forked per episode by copy-on-write, hashed like tau2.

A fork shares the base's entity objects (users, orders, products) until a tool looks one up by key; the
first lookup replaces it, in the fork only, by a private copy validated from the base's cached dump
(about 5 us). Forking therefore costs microseconds instead of the 50 ms of `model_copy(deep=True)`.

tau2's hash is `sha256(json.dumps(db.model_dump(), sort_keys=True, default=str))`. With the default
separators that JSON text is a concatenation of one fragment per entity, so a fork rebuilds it from the
base's cached fragments plus fresh fragments for the entities it touched: the same text, so the same hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from sentinel_async.tools.tau2_compat import tau2_retail

TableKey = tuple[str, str]


def entity_json(entity: Any) -> str:
    """One entity's JSON text exactly as it appears inside tau2's hashed dump."""
    return json.dumps(entity.model_dump(), sort_keys=True, default=str)


class CowTable(dict[str, Any]):
    """A fork's table: keyed lookups copy the base entity into the fork first; writes mark keys touched.

    Iterating (`items()`, `values()`) yields the shared base objects of untouched keys: read them only
    (the retail tools only read while iterating, and reach every entity they change by key).
    """

    __slots__ = ("_base_dumps", "_model", "touched")

    def __init__(self, base: Mapping[str, Any], base_dumps: Mapping[str, dict[str, Any]], model: Any) -> None:
        super().__init__(base)
        self._base_dumps = base_dumps
        self._model = model
        self.touched: set[str] = set()

    def _own(self, key: str) -> None:
        if key in self.touched or not dict.__contains__(self, key):
            return
        dump = self._base_dumps.get(key)
        if dump is not None:
            dict.__setitem__(self, key, self._model.model_validate(dump))
        self.touched.add(key)

    def __getitem__(self, key: str) -> Any:
        self._own(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._own(key)
        return dict.get(self, key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self._own(key)
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._own(key)
        self.touched.add(key)
        return dict.setdefault(self, key, default)

    def popitem(self) -> tuple[str, Any]:
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        self.touched.update(self.keys())
        dict.clear(self)

    def __ior__(self, other: Any) -> CowTable:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling or deep-copying a fork's table gives a plain dict (with its current entities).
        return (dict, (dict(self),))


class RetailStore:
    """The base retail database, parsed once from tau2's db.json; never mutated."""

    def __init__(self, db: Any) -> None:
        self.db: Any = db
        fields = type(db).model_fields
        self.tables: tuple[str, ...] = tuple(sorted(fields))
        # Each table is a `dict[str, Model]`: the entity model validates a fork's private copies.
        self._models = {table: typing.get_args(fields[table].annotation)[1] for table in self.tables}
        self._dumps: dict[str, dict[str, dict[str, Any]]] = {
            table: {key: entity.model_dump() for key, entity in getattr(db, table).items()} for table in self.tables
        }
        self._lock = threading.Lock()

    @functools.cached_property
    def _entries(self) -> dict[str, dict[str, str]]:
        """Per table, per key: the `"key": {...}` text of that entity in tau2's hashed dump."""
        with self._lock:
            return {
                table: {
                    key: f"{json.dumps(key)}: {entity_json(entity)}" for key, entity in getattr(self.db, table).items()
                }
                for table in self.tables
            }

    @functools.cached_property
    def base_hash(self) -> str:
        """tau2's `get_db_hash()` of the unmodified database."""
        return _sha256_text(self._assemble({}))

    def fork(self) -> RetailFork:
        """A private, writable copy of the database (copy-on-write: microseconds)."""
        tables = {
            table: CowTable(getattr(self.db, table), self._dumps[table], self._models[table]) for table in self.tables
        }
        return RetailFork(self, type(self.db).model_construct(**tables), tables)

    def entry(self, table: str, key: str) -> str | None:
        """The base's hashed text for one entity, or None when the key is not in the base."""
        return self._entries[table].get(key)

    def _assemble(self, changed: Mapping[TableKey, str | None]) -> str:
        """tau2's hashed JSON text of the base with some entries replaced (None deletes one)."""
        by_table: dict[str, dict[str, str | None]] = {}
        for (table, key), entry in changed.items():
            by_table.setdefault(table, {})[key] = entry
        parts = []
        for table in self.tables:
            entries: Mapping[str, str | None] = self._entries[table]
            if table in by_table:
                entries = {**entries, **by_table[table]}
            body = ", ".join(entry for key in sorted(entries) if (entry := entries[key]) is not None)
            parts.append(f"{json.dumps(table)}: {{{body}}}")
        return "{" + ", ".join(parts) + "}"


class RetailFork:
    """One episode's database: a pydantic RetailDB whose tables copy entities on first keyed access."""

    def __init__(self, store: RetailStore, db: Any, tables: Mapping[str, CowTable]) -> None:
        self.store = store
        self.db: Any = db
        self._tables = tables

    def touched(self) -> Iterator[TableKey]:
        """The (table, key) pairs this fork looked up, wrote or deleted."""
        for table, cow in self._tables.items():
            for key in cow.touched:
                yield table, key

    def changes(self) -> dict[TableKey, str | None]:
        """The entities whose hashed text differs from the base (None: deleted); equal dicts, equal DBs."""
        changed: dict[TableKey, str | None] = {}
        for table, key in self.touched():
            cow = self._tables[table]
            entry = f"{json.dumps(key)}: {entity_json(dict.__getitem__(cow, key))}" if key in cow else None
            if entry != self.store.entry(table, key):
                changed[(table, key)] = entry
        return changed

    def state_hash(self) -> str:
        """Exactly tau2's `get_db_hash()` of this fork (1-2 ms: only touched entities are re-dumped)."""
        changed = self.changes()
        if not changed:
            return self.store.base_hash
        return _sha256_text(self.store._assemble(changed))


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_STORE_LOCK = threading.Lock()
_store: RetailStore | None = None


def retail_store() -> RetailStore:
    """The process-wide base database, loaded with tau2's own `RetailDB.load` on first use."""
    global _store
    if _store is None:
        with _STORE_LOCK:
            if _store is None:
                api = tau2_retail()
                _store = RetailStore(api.retail_db_class.load(str(api.db_path)))
    return _store
