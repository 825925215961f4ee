"""Transactional steps on DynamoDB: the user's writes in the step record's ``TransactWriteItems``.

One transaction holds the fence check of the run (or the fenced update of its
metadata), the step's journal put, then the user's writes in order. Only our
two actions are stamped with the write token (the user's items are never
touched beyond what the user wrote), which is enough: a transaction is atomic,
so our stamped journal item read back from a retry's failed condition proves
the user's writes were applied with it (see :func:`.writes.write_token`).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import writes as w
from durable_lambda.engine.transaction import Condition, TableWrite
from durable_lambda.errors import ConfigurationError, TransactionConditionFailed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from durable_lambda.engine.journal import JournalEntry
    from durable_lambda.engine.records import Fence

_serializer = TypeSerializer()


class TransactionWrites:
    """What :class:`~.runs.DynamoDBRunStore` adds for ``ctx.transact`` (a mixin)."""

    client: DynamoDBClient
    table: str

    def _entry_put(self, run_id: str, entry: JournalEntry) -> TransactWriteItemTypeDef:
        raise NotImplementedError  # the run store's own

    def record_transaction(
        self,
        run_id: str,
        fence: Fence,
        entry: JournalEntry,
        writes: Sequence[TableWrite],
        metadata: str | None = None,
    ) -> None:
        """Write ``entry`` and ``writes`` in one fenced ``TransactWriteItems``.

        Raises:
            TransactionConditionFailed: A user write's condition failed
                (nothing was written); it names the table and the item's key.
            LeaseLostError: The fence no longer holds, or the entry is final.
            ConfigurationError: A write targets durable-lambda's own table.
        """
        for write in writes:
            if write.table == self.table:
                # Its items are the runtime's records: a user write there could forge them.
                raise ConfigurationError(
                    f"ctx.transact may not write durable-lambda's own table {self.table!r}"
                )
        fence_action: TransactWriteItemTypeDef = (
            w.fence_check(self.table, run_id, fence)
            if metadata is None
            else {"Update": w.metadata_update(self.table, run_id, fence, metadata)}
        )
        ours = [fence_action, self._entry_put(run_id, entry)]
        user = [user_action(write) for write in writes]
        token = w.write_token(run_id, fence.owner, fence.epoch, ours, user)
        actions = [*w.stamp(ours, token), *user]
        for attempt in range(w.CONFLICT_ATTEMPTS):
            try:
                # A new token per conflict retry: the last try was cancelled, not applied.
                self.client.transact_write_items(
                    TransactItems=actions, ClientRequestToken=w.write_token(token, attempt)
                )
            except ClientError as exc:
                reasons = w.cancellation_reasons(exc)
                if w.applied(reasons[: len(ours)], token):
                    return  # our own first try, applied before its response was lost
                failure = w.fenced_failure(run_id, fence, actions[: len(ours)], reasons)
                if failure is not None:
                    raise failure from None
                for index, write in enumerate(writes):
                    if w.failed_condition(reasons, len(ours) + index):
                        raise TransactionConditionFailed(
                            write.table, self._key_of(write), index
                        ) from None
                if w.conflicted(reasons) and attempt + 1 < w.CONFLICT_ATTEMPTS:
                    continue
                raise
            return

    def _key_of(self, write: TableWrite) -> dict[str, Any]:
        """The key of ``write``'s item; a put's is read from the table's key schema."""
        if write.key is not None:
            return dict(write.key)
        schema = self.client.describe_table(TableName=write.table)["Table"]["KeySchema"]
        item = write.item or {}
        return {part["AttributeName"]: item.get(part["AttributeName"]) for part in schema}


def user_action(write: TableWrite) -> TransactWriteItemTypeDef:
    """The transaction action of one user write."""
    aliases = _Aliases()
    body: dict[str, Any] = {"TableName": write.table}
    if write.kind == "put":
        body["Item"] = _attributes(write.item or {})
        item_names = list(write.item or {})
    else:
        body["Key"] = _attributes(write.key or {})
        item_names = list(write.key or {})
    if write.kind == "update":
        body["UpdateExpression"] = _update_expression(write, aliases)
    if write.conditions:
        body["ConditionExpression"] = " AND ".join(
            _condition(c, item_names, aliases) for c in write.conditions
        )
    if aliases.names:
        body["ExpressionAttributeNames"] = aliases.names
    if aliases.values:
        body["ExpressionAttributeValues"] = aliases.values
    verb = {"put": "Put", "update": "Update", "delete": "Delete"}.get(write.kind, "ConditionCheck")
    return cast("TransactWriteItemTypeDef", {verb: body})


class _Aliases:
    """Numbered aliases (``#n0``, ``:v0``): user attribute names may be anything."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for alias, known in self.names.items():
            if known == attribute:
                return alias
        alias = f"#n{len(self.names)}"
        self.names[alias] = attribute
        return alias

    def value(self, value: Any) -> str:
        alias = f":v{len(self.values)}"
        self.values[alias] = _serialize(value)
        return alias


def _update_expression(write: TableWrite, aliases: _Aliases) -> str:
    clauses = []
    if write.set:
        sets = (f"{aliases.name(k)} = {aliases.value(v)}" for k, v in write.set.items())
        clauses.append("SET " + ", ".join(sets))
    if write.add:
        adds = (f"{aliases.name(k)} {aliases.value(v)}" for k, v in write.add.items())
        clauses.append("ADD " + ", ".join(adds))
    if write.remove:
        clauses.append("REMOVE " + ", ".join(aliases.name(k) for k in write.remove))
    return " ".join(clauses)


def _condition(condition: Condition, item_names: list[str], aliases: _Aliases) -> str:
    if condition.op in ("exists", "absent"):
        if condition.attribute is not None:
            function = "attribute_exists" if condition.op == "exists" else "attribute_not_exists"
            return f"{function}({aliases.name(condition.attribute)})"
        # The item exists when any of its key attributes does (a put's: any of its attributes).
        if condition.op == "exists":
            parts = (f"attribute_exists({aliases.name(n)})" for n in item_names)
            return "(" + " OR ".join(parts) + ")"
        parts = (f"attribute_not_exists({aliases.name(n)})" for n in item_names)
        return "(" + " AND ".join(parts) + ")"
    name = aliases.name(condition.attribute or "")
    # attribute_exists first: a missing attribute compares false for every operator,
    # "<>" included, as the memory tables say.
    return f"(attribute_exists({name}) AND {name} {condition.op} {aliases.value(condition.value)})"


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in values.items()}


def _serialize(value: Any) -> Any:
    return _serializer.serialize(_numbers(value))


def _numbers(value: Any) -> Any:
    """``value`` with floats as ``Decimal`` (DynamoDB numbers; boto3 refuses floats)."""
    if isinstance(value, float):
        return decimal.Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value
