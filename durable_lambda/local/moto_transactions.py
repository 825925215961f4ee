"""moto's TransactWriteItems with a rollback that saves the items it names, not whole tables.

moto backs up a table before applying a transaction by deep-copying the
whole table, once per operation that names it, so that it can restore it if
the transaction is cancelled. The copy costs time in proportion to the
table's size times the transaction's: on the emulated stack, whose one table
holds every run's records, a child run's transactions grew to tens of
milliseconds each and a parent's create of 100 children to seconds, all
behind the lock that makes DynamoDB requests atomic (``serialise_dynamodb``),
so a fan-out of 100 children spent most of its time copying tables.

A rollback needs only the items the transaction names. This patch saves
those, lets moto's own transaction run unchanged (conditions, validation,
cancellation reasons) with its table copies turned into no-ops, and puts
the saved items back if the transaction raises, dropping the stream records
of its writes too, as moto's restored copy did (a cancelled transaction
writes nothing to a DynamoDB stream).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: Set while a patched transaction runs in this thread: moto's table backup is skipped.
_sparing = threading.local()


@dataclass(frozen=True, slots=True)
class _Saved:
    """One item a transaction names, as it was before (``None``: absent)."""

    table: Any  # moto's Table
    hash_key: Any  # moto's DynamoType
    range_key: Any
    before: Any  # moto's Item, a private copy, or None
    stream_records: int | None  # how many records the table's stream held (None: no stream)


class _CopyOfTablesSpared:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend.

    Deep copies go through unchanged, except a table's while a patched
    transaction runs in this thread: that one is the table itself, so moto's
    own rollback (putting its "copy" back) changes nothing and ours restores
    the items.
    """

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if getattr(_sparing, "active", False) and isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)


def spare_table_copies() -> None:
    """Patch moto's DynamoDB backend (idempotent, process-wide): see the module docstring."""
    import moto.dynamodb.models as ddb_models  # noqa: PLC0415 - moto only locally
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    backend = ddb_models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_dl_spares_tables", False):
        return
    ddb_models.copy = _CopyOfTablesSpared(Table)  # type: ignore[attr-defined,assignment]
    original: Callable[[Any, list[dict[str, Any]]], None] = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _saved_items(self, transact_items)
        if saved is None:  # keys moto will refuse: its own path, copies and all
            original(self, transact_items)
            return
        try:
            with _tables_spared():
                original(self, transact_items)
        except BaseException:
            _restore(saved)
            raise

    transact_write_items._dl_spares_tables = True  # type: ignore[attr-defined]  # noqa: SLF001 - our own marker
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


@contextmanager
def _tables_spared() -> Iterator[None]:
    _sparing.active = True
    try:
        yield
    finally:
        _sparing.active = False


def _saved_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[_Saved] | None:
    """A private copy of each item the transaction names; ``None`` if one has no usable key."""
    saved: list[_Saved] = []
    for entry in transact_items:
        for kind, operation in entry.items():
            table = backend.tables.get(operation.get("TableName"))
            keys = operation.get("Item") if kind == "Put" else operation.get("Key")
            if table is None:
                continue  # nothing to restore: moto cancels the transaction for it
            if not isinstance(keys, dict):
                return None
            try:
                hash_key, range_key = backend.get_keys_value(table, keys)
            except Exception:  # noqa: BLE001 - moto's validation error for a missing key part
                return None
            before = copy.deepcopy(table.get_item(hash_key, range_key))
            shard = table.stream_shard
            records = None if shard is None else len(shard.items)
            saved.append(_Saved(table, hash_key, range_key, before, records))
    return saved


def _restore(saved: list[_Saved]) -> None:
    """Put each named item back as it was; the first save of a key wins (it predates the rest)."""
    for item in reversed(saved):
        shard = item.table.stream_shard
        if shard is not None and item.stream_records is not None:
            del shard.items[item.stream_records :]
        items = item.table.items
        if item.range_key is None:
            if item.before is None:
                items.pop(item.hash_key, None)
            else:
                items[item.hash_key] = item.before
        elif item.before is None:
            if item.hash_key in items:
                items[item.hash_key].pop(item.range_key, None)
        else:
            items[item.hash_key][item.range_key] = item.before
