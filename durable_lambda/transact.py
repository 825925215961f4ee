"""``ctx.transact``: a step whose DynamoDB writes commit in the same transaction as its record.

The body ``fn(tx, *args)`` describes writes with ``tx.put``, ``tx.update``,
``tx.delete`` and ``tx.condition_check``; nothing is written while it runs.
When it returns, the writes are checked against DynamoDB's transaction limits
and committed in one ``TransactWriteItems`` with the step's journal record and
the run's fence, so they happen exactly once: a crash before the commit wrote
nothing (the body runs again), a crash after it left the record (a replay
returns the recorded result and writes nothing), and a stale invocation's
commit fails its fence as a whole.
"""

from __future__ import annotations

import copy
import dataclasses
import decimal
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from durable_lambda.engine.transaction import (
    Condition,
    TableWrite,
    Transacted,
    WriteKind,
    check_limits,
)
from durable_lambda.errors import ConfigurationError

__all__ = ["Condition", "Transaction", "transactional"]

Conditions = Condition | Iterable[Condition] | None


class Transaction:
    """The ``tx`` a transactional step's body describes its writes on.

    Values are DynamoDB's: ``str``, ``int``, ``float``, ``Decimal``, ``bool``,
    ``None``, ``bytes``, and lists and dicts (string keys) of them. Each
    item may be written once per transaction (DynamoDB's rule).
    """

    def __init__(self) -> None:
        """Start with no writes."""
        self._writes: list[TableWrite] = []
        self._targets: set[tuple[str, str]] = set()

    @property
    def writes(self) -> tuple[TableWrite, ...]:
        """The writes described so far, in order."""
        return tuple(self._writes)

    def put(self, table: str, item: Mapping[str, Any], *, condition: Conditions = None) -> None:
        """Write ``item`` whole (its key attributes included), replacing any item of that key."""
        self._add(TableWrite("put", _table(table), item=_attributes(item, "put item")), condition)

    def update(
        self,
        table: str,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,  # noqa: A002 - DynamoDB's own word
        add: Mapping[str, int | float | decimal.Decimal] | None = None,
        remove: Iterable[str] = (),
        condition: Conditions = None,
    ) -> None:
        """Change attributes of the item at ``key`` (created when absent, as DynamoDB does).

        Args:
            table: The table.
            key: The item's key attributes.
            set: Attributes to set.
            add: Numbers to add to attributes (an absent one counts from 0).
            remove: Attributes to remove.
            condition: What must hold first.
        """
        sets = _attributes(set or {}, "update set", allow_empty=True)
        adds = _attributes(add or {}, "update add", allow_empty=True)
        for name, value in adds.items():
            if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
                raise ConfigurationError(f"tx.update add {name!r} must be a number, got {value!r}")
        removes = tuple(remove)
        for name in removes:
            _name(name, "tx.update remove")
        named = [*sets, *adds, *removes]
        if not named:
            raise ConfigurationError("tx.update needs at least one of set=, add=, remove=")
        if len(named) != len(frozenset(named)):
            raise ConfigurationError(f"tx.update names an attribute twice: {sorted(named)}")
        write = TableWrite(
            "update", _table(table), key=_key(key), set=sets, add=adds, remove=removes
        )
        self._add(write, condition)

    def delete(self, table: str, key: Mapping[str, Any], *, condition: Conditions = None) -> None:
        """Delete the item at ``key`` (nothing happens when it is absent)."""
        self._add(TableWrite("delete", _table(table), key=_key(key)), condition)

    def condition_check(self, table: str, key: Mapping[str, Any], condition: Conditions) -> None:
        """Require ``condition`` of the item at ``key`` without writing it."""
        kind: WriteKind = "condition_check"
        if not _conditions(condition):
            raise ConfigurationError("tx.condition_check needs a condition")
        self._add(TableWrite(kind, _table(table), key=_key(key)), condition)

    def _add(self, write: TableWrite, condition: Conditions) -> None:
        if write.key is not None:
            target = (write.table, repr(sorted(write.key.items())))
            if target in self._targets:
                raise ConfigurationError(
                    f"{write.describe()} is written twice in one transaction; "
                    "DynamoDB allows one action per item"
                )
            self._targets.add(target)
        conditions = _conditions(condition)
        if conditions:
            write = dataclasses.replace(write, conditions=conditions)
        self._writes.append(write)


def transactional(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The step body of ``ctx.transact``: ``fn(tx, *args)`` with its writes checked and attached.

    Returns a function of the same kind (sync or async) returning
    :class:`~durable_lambda.engine.transaction.Transacted`.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Transacted:
            tx = Transaction()
            value = await fn(tx, *args, **kwargs)
            check_limits(tx.writes)
            return Transacted(value, tx.writes)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Transacted:
        tx = Transaction()
        value = fn(tx, *args, **kwargs)
        if inspect.isawaitable(value):
            raise ConfigurationError(
                f"ctx.transact: {getattr(fn, '__name__', fn)!r} returned an awaitable; "
                "make it an async def"
            )
        check_limits(tx.writes)
        return Transacted(value, tx.writes)

    return run


def _table(table: object) -> str:
    _name(table, "table name")
    return str(table)


def _key(key: Mapping[str, Any]) -> dict[str, Any]:
    return _attributes(key, "key")


def _attributes(
    values: Mapping[str, Any], what: str, *, allow_empty: bool = False
) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"tx {what} must be a mapping, got {type(values).__name__}")
    if not values and not allow_empty:
        raise ConfigurationError(f"tx {what} must name at least one attribute")
    for name, value in values.items():
        _name(name, f"tx {what} attribute")
        _value(value, f"tx {what} {name!r}")
    # A copy: the body may change its dicts after describing the write.
    return copy.deepcopy(dict(values))


def _name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{what} must be a non-empty string, got {name!r}")


def _value(value: Any, what: str) -> None:
    if isinstance(value, float | decimal.Decimal) and not math.isfinite(value):
        raise ConfigurationError(f"{what} is {value}; DynamoDB numbers are finite")
    if value is None or isinstance(value, str | bool | int | float | decimal.Decimal | bytes):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _value(item, what)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _name(key, f"{what} map key")
            _value(item, what)
        return
    raise ConfigurationError(
        f"{what} holds a {type(value).__name__}; DynamoDB values are str, numbers, bool, "
        "None, bytes, lists and dicts"
    )


def _conditions(condition: Conditions) -> tuple[Condition, ...]:
    if condition is None:
        return ()
    conditions = (condition,) if isinstance(condition, Condition) else tuple(condition)
    for item in conditions:
        if not isinstance(item, Condition):
            raise ConfigurationError(f"tx condition must be a Condition, got {item!r}")
    return conditions
