"""Transactional steps: the user's DynamoDB writes as opaque descriptions, and their limits. Pure.

A transactional step's body describes writes to the user's own tables; the
store commits them in the same transaction as the step's journal record (and
its fence), so they happen exactly when the record does: once. The engine
never interprets the writes beyond counting and sizing them: the store
applies them (DynamoDB ``TransactWriteItems``, or in-memory tables).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from durable_lambda.errors import ConfigurationError, TransactionLimitError

#: DynamoDB's limits on one ``TransactWriteItems``: 100 actions, 4 MB, 400 KB per item.
TRANSACTION_ACTIONS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024
ITEM_BYTES = 400 * 1024
#: The step's own actions in the transaction: its journal record and the fence check
#: on the run's record (both needed: the record makes the writes once, the fence
#: keeps a stale invocation from committing them).
RECORD_ACTIONS = 2
MAX_WRITES = TRANSACTION_ACTIONS - RECORD_ACTIONS
#: The bytes left to the user's writes: the journal record is one item of up to 400 KB.
MAX_WRITE_BYTES = TRANSACTION_BYTES - ITEM_BYTES

Comparison = Literal["=", "<>", "<", "<=", ">", ">="]
COMPARISONS: tuple[Comparison, ...] = ("=", "<>", "<", "<=", ">", ">=")
WriteKind = Literal["put", "update", "delete", "condition_check"]


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition on an item that a transactional write needs to hold.

    Build one with :meth:`exists`, :meth:`absent` or :meth:`compare`; pass a
    list of them to require all.

    Attributes:
        op: ``exists``, ``absent`` or a comparison operator.
        attribute: The attribute it is about (``None``: the item itself).
        value: What a comparison compares the attribute with.
    """

    op: Literal["exists", "absent"] | Comparison
    attribute: str | None = None
    value: Any = None

    @classmethod
    def exists(cls, attribute: str | None = None) -> Condition:
        """The item (or its ``attribute``) exists."""
        return cls("exists", attribute)

    @classmethod
    def absent(cls, attribute: str | None = None) -> Condition:
        """The item (or its ``attribute``) does not exist."""
        return cls("absent", attribute)

    @classmethod
    def compare(cls, attribute: str, op: Comparison, value: Any) -> Condition:
        """The item's ``attribute`` compares to ``value`` by ``op`` (false when missing).

        Raises:
            ConfigurationError: ``op`` is not one of ``= <> < <= > >=``.
        """
        if op not in COMPARISONS:
            raise ConfigurationError(
                f"Condition.compare op must be one of {' '.join(COMPARISONS)}, got {op!r}"
            )
        _check_name(attribute, "Condition attribute")
        return cls(op, attribute, value)


@dataclass(frozen=True, slots=True)
class TableWrite:
    """One write of a transactional step to a user table, as the store applies it.

    Attributes:
        kind: ``put``, ``update``, ``delete`` or ``condition_check``.
        table: The table's name.
        key: The item's key attributes (for ``put``: ``None``, the item holds them).
        item: The whole item of a ``put``.
        set: Attributes an ``update`` sets.
        add: Numbers an ``update`` adds to attributes (absent: from 0).
        remove: Attributes an ``update`` removes.
        conditions: What must hold for the transaction to commit (all of them).
    """

    kind: WriteKind
    table: str
    key: Mapping[str, Any] | None = None
    item: Mapping[str, Any] | None = None
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()

    def size(self) -> int:
        """An upper estimate of the bytes this write sends (DynamoDB's item-size rules)."""
        return sum(
            value_size(part)
            for part in (self.key or {}, self.item or {}, self.set, self.add)
            if part
        ) + sum(len(name.encode("utf-8")) for name in self.remove)

    def describe(self) -> str:
        """The write's target for an error message: table and key, never other values."""
        if self.key is None:  # a put: which attributes are its key, only the table knows
            return f"table {self.table!r}"
        return f"table {self.table!r} key {dict(self.key)!r}"


@dataclass(frozen=True, slots=True)
class Transacted:
    """A transactional step body's result together with the writes to commit with it."""

    value: Any
    writes: tuple[TableWrite, ...]


def unwrap(value: Any) -> tuple[Any, tuple[TableWrite, ...] | None]:
    """``(result, writes)`` of a step body's return value (``None``: a plain step)."""
    if isinstance(value, Transacted):
        return value.value, value.writes
    return value, None


def check_limits(writes: Sequence[TableWrite]) -> None:
    """Refuse writes DynamoDB would refuse in one transaction, before anything is written.

    Raises:
        TransactionLimitError: Naming the limit: more than :data:`MAX_WRITES`
            writes, one above :data:`ITEM_BYTES`, or all above :data:`MAX_WRITE_BYTES`.
    """
    if len(writes) > MAX_WRITES:
        raise TransactionLimitError(
            "writes",
            len(writes),
            MAX_WRITES,
            "one transaction holds 100 actions, 2 of them the step's record and its fence check",
        )
    total = 0
    for index, write in enumerate(writes):
        size = write.size()
        if size > ITEM_BYTES:
            raise TransactionLimitError(
                f"bytes of write {index} ({write.kind} {write.describe()})",
                size,
                ITEM_BYTES,
                "DynamoDB's item size limit",
            )
        total += size
    if total > MAX_WRITE_BYTES:
        raise TransactionLimitError(
            "bytes of all writes",
            total,
            MAX_WRITE_BYTES,
            "a transaction's 4 MB less 400 KB for the step's record",
        )


def value_size(value: Any) -> int:
    """An upper estimate of ``value``'s size as DynamoDB counts it (names included)."""
    if isinstance(value, Mapping):
        return 3 + sum(1 + len(str(k).encode("utf-8")) + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(1 + value_size(v) for v in value)
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | decimal.Decimal):
        return 1 + (len(str(value)) + 1) // 2  # two digits a byte, plus one
    data = value if isinstance(value, bytes | bytearray) else str(value).encode("utf-8")
    return len(data)


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{what} must be a non-empty string, got {name!r}")
