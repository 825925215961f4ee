"""Users' own DynamoDB tables, in memory: what ``ctx.transact`` writes to under ``LocalRunner``.

A test creates the tables its tasks write (``runner.tables.create("stock",
key=("sku",))``), seeds them, runs its tasks and reads the items back. Writes
follow DynamoDB's rules as far as ``ctx.transact`` can express them: all
conditions are checked before anything changes, an update creates a missing
item, a delete of a missing item does nothing, a comparison with a missing
attribute is false.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable_lambda.engine.transaction import Condition, TableWrite
from durable_lambda.errors import ConfigurationError, TransactionConditionFailed

Item = dict[str, Any]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class MemoryTables:
    """Named tables of items, each with a key of one or two attributes.

    Args:
        lock: The lock of the store these tables commit with (one lock, so a
            transaction's record and its writes change together).
    """

    def __init__(self, lock: threading.Lock | None = None) -> None:
        """Start with no tables."""
        self._lock = lock or threading.Lock()
        self._schemas: dict[str, tuple[str, ...]] = {}
        self._items: dict[str, dict[tuple[Any, ...], Item]] = {}

    def create(self, name: str, key: Sequence[str] = ("pk",)) -> None:
        """Create table ``name`` keyed by ``key`` (a partition key, and a sort key if two).

        Raises:
            ConfigurationError: The key is not one or two attribute names, or
                the table exists with another key.
        """
        key = tuple(key)
        if not 1 <= len(key) <= 2 or not all(isinstance(k, str) and k for k in key):  # noqa: PLR2004
            raise ConfigurationError(
                f"table {name!r}: key must be one or two attribute names, got {key!r}"
            )
        with self._lock:
            if name in self._schemas and self._schemas[name] != key:
                raise ConfigurationError(
                    f"table {name!r} exists with key {self._schemas[name]!r}, not {key!r}"
                )
            self._schemas.setdefault(name, key)
            self._items.setdefault(name, {})

    def put(self, name: str, item: Mapping[str, Any]) -> None:
        """Store ``item`` as it is (seed data for a test)."""
        with self._lock:
            key = self._key_of(name, item, "item")
            self._items[name][key] = copy.deepcopy(dict(item))

    def get(self, name: str, key: Mapping[str, Any]) -> Item | None:
        """A copy of the item at ``key``, or ``None``."""
        with self._lock:
            item = self._items_of(name).get(self._key_of(name, key, "key", exact=True))
            return copy.deepcopy(item)

    def items(self, name: str) -> list[Item]:
        """Copies of every item of table ``name``."""
        with self._lock:
            return [copy.deepcopy(item) for item in self._items_of(name).values()]

    # -- for the run store, under its lock ------------------------------------------------------

    def apply_locked(self, writes: Sequence[TableWrite]) -> None:
        """Check every write's conditions, then apply them all; the caller holds the lock.

        Raises:
            TransactionConditionFailed: Naming the first write whose condition
                failed; nothing was changed.
            ConfigurationError: A write names a table never created, or a key
                that is not the table's.
        """
        targets = [self._target(write) for write in writes]
        if len(set(targets)) != len(targets):
            raise ConfigurationError("a transaction writes the same item twice")
        for index, (write, target) in enumerate(zip(writes, targets, strict=True)):
            item = self._items[write.table].get(target[1])
            if not all(_holds(condition, item) for condition in write.conditions):
                named = dict(zip(self._schemas[write.table], target[1], strict=True))
                raise TransactionConditionFailed(write.table, named, index)
        for write, (_, key) in zip(writes, targets, strict=True):
            self._apply(write, key)

    def _target(self, write: TableWrite) -> tuple[str, tuple[Any, ...]]:
        if write.kind == "put":
            return write.table, self._key_of(write.table, write.item or {}, "put item")
        return write.table, self._key_of(write.table, write.key or {}, "key", exact=True)

    def _apply(self, write: TableWrite, key: tuple[Any, ...]) -> None:
        rows = self._items[write.table]
        if write.kind == "put":
            rows[key] = copy.deepcopy(dict(write.item or {}))
        elif write.kind == "delete":
            rows.pop(key, None)
        elif write.kind == "update":
            item = rows.setdefault(key, copy.deepcopy(dict(write.key or {})))
            item.update(copy.deepcopy(dict(write.set)))
            for name, amount in write.add.items():
                item[name] = item.get(name, 0) + amount
            for name in write.remove:
                item.pop(name, None)

    def _items_of(self, name: str) -> dict[tuple[Any, ...], Item]:
        if name not in self._items:
            raise ConfigurationError(
                f"table {name!r} does not exist in memory; create it first "
                f"(runner.tables.create({name!r}, key=(...)))"
            )
        return self._items[name]

    def _key_of(
        self, name: str, values: Mapping[str, Any], what: str, *, exact: bool = False
    ) -> tuple[Any, ...]:
        self._items_of(name)
        schema = self._schemas[name]
        if any(k not in values for k in schema) or (exact and len(values) != len(schema)):
            raise ConfigurationError(
                f"table {name!r}: {what} must hold exactly its key attributes {schema!r}"
                if exact
                else f"table {name!r}: {what} lacks key attributes {schema!r}"
            )
        return tuple(_hashable(values[k]) for k in schema)


def _hashable(value: Any) -> Any:
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _holds(condition: Condition, item: Item | None) -> bool:
    if condition.op in ("exists", "absent"):
        present = item is not None and (condition.attribute is None or condition.attribute in item)
        return present == (condition.op == "exists")
    if item is None or condition.attribute not in item:
        return False  # DynamoDB: a comparison with a missing attribute is false
    try:
        return _COMPARE[condition.op](item[condition.attribute], condition.value)
    except TypeError:
        return False  # values of different types never compare, as in DynamoDB
