"""The conditional writes of the DynamoDB run store, and what their failures mean. No I/O.

Each builder returns one request (or one transaction action) whose condition
is the store's rule: a lease is taken only when ``lease_outcome`` would say
TAKEN; every write of an invocation is fenced by ``lease_owner`` and ``epoch``;
a journal position is written only while empty, RETRYING or WAITING.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.records import Fence, RunRecord
from durable_lambda.engine.state import RESUMABLE, TERMINAL, RunStatus
from durable_lambda.errors import LeaseLostError, RunNotFoundError
from durable_lambda.values import StoredValue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        TransactWriteItemTypeDef,
        UpdateItemInputTypeDef,
        UpdateTypeDef,
    )

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: DynamoDB's limits on one transaction: 100 actions, 4 MB (kept below it).
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 3_500_000

FENCE_CONDITION = "#lease_owner = :owner AND #epoch = :fence_epoch"
FENCE_NAMES = {"#lease_owner": "lease_owner", "#epoch": "epoch"}
ENTRY_WRITABLE = "attribute_not_exists(pk) OR #status IN (:retrying, :waiting)"
#: The token of the last write that stamped an item (see :func:`write_token`).
WRITE_ID = "write_id"


class Update:
    """An UpdateExpression under construction, every name and value aliased."""

    def __init__(self) -> None:
        """Start empty."""
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: Item = {}

    def name(self, attribute: str) -> str:
        """The alias of ``attribute`` (registered)."""
        alias = f"#{attribute}"
        self.names[alias] = attribute
        return alias

    def set(self, attribute: str, value: Any) -> None:
        """``SET attribute = value``."""
        alias = f":{attribute}"
        self.values[alias] = value
        self.sets.append(f"{self.name(attribute)} = {alias}")

    def remove(self, attribute: str) -> None:
        """``REMOVE attribute``."""
        self.removes.append(self.name(attribute))

    def set_or_remove(self, attribute: str, value: str | dt.datetime | None) -> None:
        """Set a string or time, or remove the attribute for ``None``."""
        if value is None:
            self.remove(attribute)
        else:
            text = items.iso(value) if isinstance(value, dt.datetime) else value
            self.set(attribute, items.s(text))

    def set_value(self, attribute: str, value: StoredValue) -> None:
        """Set a stored value, removing its other form (inline versus blob key)."""
        if value.ref is not None:
            self.set(f"{attribute}_ref", items.s(value.ref))
            self.remove(attribute)
        else:
            self.set(attribute, items.s(value.inline if value.inline is not None else "null"))
            self.remove(f"{attribute}_ref")

    @property
    def expression(self) -> str:
        """The UpdateExpression text."""
        parts = [f"SET {', '.join(self.sets)}"]
        if self.removes:
            parts.append(f"REMOVE {', '.join(self.removes)}")
        return " ".join(parts)


def lease_request(
    table: str, run_id: str, *, epoch: int, owner: str, expiry: dt.datetime, now: dt.datetime
) -> UpdateItemInputTypeDef:
    """The one UpdateItem that takes a run's lease, conditioned like ``lease_outcome``."""
    resumable = {f":r{i}": items.s(s.value) for i, s in enumerate(sorted(RESUMABLE))}
    condition = (
        "#epoch = :epoch AND ((#status = :running AND (attribute_not_exists(#lease_expiry)"
        f" OR #lease_expiry <= :now)) OR (#status IN ({', '.join(resumable)})"
        " AND (attribute_not_exists(#wake_at) OR #wake_at <= :now)))"
    )
    return {
        "TableName": table,
        "Key": items.key(items.run_pk(run_id), items.META),
        "UpdateExpression": "SET #status = :running, #lease_owner = :owner,"
        " #lease_expiry = :expiry, #updated_at = :now, #gsi2pk = :gsi2pk,"
        " #gsi2sk = :gsi2sk REMOVE #gsi3pk, #gsi3sk ADD #invocations :one",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {
            **FENCE_NAMES,
            **{f"#{name}": name for name in ("status", "lease_expiry", "wake_at", "updated_at")},
            **{
                f"#{name}": name for name in ("gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "invocations")
            },
        },
        "ExpressionAttributeValues": {
            ":epoch": items.n(epoch),
            ":running": items.s(RunStatus.RUNNING.value),
            ":owner": items.s(owner),
            ":expiry": items.s(items.iso(expiry)),
            ":now": items.s(items.iso(now)),
            ":gsi2pk": items.s(f"STATUS#{RunStatus.RUNNING.value}"),
            ":gsi2sk": items.s(f"{items.iso(expiry)}#{run_id}"),
            ":one": items.n(1),
            **resumable,
        },
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def checkpoint_update(
    *,
    table: str,
    fence: Fence,
    old: RunRecord,
    new: RunRecord,
    output: StoredValue | None,
    error: StoredValue | None,
    retention: dt.timedelta,
) -> UpdateTypeDef:
    """The fenced Update that turns the META item of ``old`` into ``new``."""
    update = Update()
    update.set("status", items.s(new.status.value))
    update.set("epoch", items.n(new.epoch))
    update.set("updated_at", items.s(items.iso(new.updated_at)))
    gsi2pk, gsi2sk = items.status_index_keys(new)
    update.set("gsi2pk", items.s(gsi2pk))
    update.set("gsi2sk", items.s(gsi2sk))
    due = items.due_of(new)
    if due is None:
        update.remove("gsi3pk")
        update.remove("gsi3sk")
    else:
        gsi3pk, gsi3sk = items.due_index_keys(new.run_id, due)
        update.set("gsi3pk", items.s(gsi3pk))
        update.set("gsi3sk", items.s(gsi3sk))
    if new.attempt != old.attempt:
        update.set("attempt", items.n(new.attempt))
    for name in ("wake_at", "lease_owner", "lease_expiry", "finished_at"):
        update.set_or_remove(name, getattr(new, name))
    if new.started_at is not None and old.started_at is None:
        update.set("started_at", items.s(items.iso(new.started_at)))
    if new.admitted_at is not None and old.admitted_at is None:
        update.set("admitted_at", items.s(items.iso(new.admitted_at)))
    if new.finished_at is not None:
        update.set("ttl", items.n(items.epoch_seconds(new.finished_at + retention)))
    else:
        update.remove("ttl")
    if output is not None:
        update.set_value("output", output)
    if error is not None:
        update.set_value("error", error)
    return fenced(update, table, new.run_id, fence)


def fenced(update: Update, table: str, run_id: str, fence: Fence) -> UpdateTypeDef:
    """``update`` of the run's META item, applied only while ``fence`` holds."""
    update.values[":owner"] = items.s(fence.owner)
    update.values[":fence_epoch"] = items.n(fence.epoch)
    update.names.update(FENCE_NAMES)
    return {
        "TableName": table,
        "Key": items.key(items.run_pk(run_id), items.META),
        "UpdateExpression": update.expression,
        "ConditionExpression": FENCE_CONDITION,
        "ExpressionAttributeNames": update.names,
        "ExpressionAttributeValues": update.values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def fail_request(
    table: str,
    run_id: str,
    error: StoredValue,
    at: dt.datetime,
    retention: dt.timedelta,
    *,
    epoch: int,
) -> UpdateItemInputTypeDef:
    """The UpdateItem that fails a run from outside an invocation, as ``failable`` allows.

    Fenced by the epoch of the message that failed, and never a run RUNNING
    under a lease still live at ``at``.
    """
    update = Update()
    update.set("status", items.s(RunStatus.FAILED.value))
    update.set("updated_at", items.s(items.iso(at)))
    update.set("finished_at", items.s(items.iso(at)))
    update.set("ttl", items.n(items.epoch_seconds(at + retention)))
    update.set("gsi2pk", items.s(f"STATUS#{RunStatus.FAILED.value}"))
    # Out of RUNNING, the status index sorts by creation, which gsi1sk already holds.
    update.sets.append(f"{update.name('gsi2sk')} = {update.name('gsi1sk')}")
    update.sets.append(f"{update.name('epoch')} = {update.name('epoch')} + :one")
    update.values[":one"] = items.n(1)
    update.set_value("error", error)
    update.remove("lease_owner")
    update.remove("lease_expiry")
    update.remove("gsi3pk")
    update.remove("gsi3sk")
    terminal = {f":t{i}": items.s(s.value) for i, s in enumerate(sorted(TERMINAL))}
    update.values.update(terminal)
    update.values[":epoch"] = items.n(epoch)
    update.values[":running"] = items.s(RunStatus.RUNNING.value)
    update.values[":at"] = items.s(items.iso(at))
    live = "(#status = :running AND attribute_exists(#lease_expiry) AND #lease_expiry > :at)"
    # Its retry, once applied, finds the run terminal: the token tells it was us.
    update.set(WRITE_ID, items.s(write_token("fail", run_id, update.expression, update.values)))
    return {
        "TableName": table,
        "Key": items.key(items.run_pk(run_id), items.META),
        "UpdateExpression": update.expression,
        "ConditionExpression": f"attribute_exists(pk) AND #epoch = :epoch"
        f" AND NOT #status IN ({', '.join(terminal)}) AND NOT {live}",
        "ExpressionAttributeNames": update.names,
        "ExpressionAttributeValues": update.values,
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def token_of(request: UpdateItemInputTypeDef) -> str:
    """The ``write_id`` a request stamps (``""`` for none)."""
    values = cast("Item", request.get("ExpressionAttributeValues", {}))
    return items.get_s(values, f":{WRITE_ID}") or ""


def fence_check(table: str, run_id: str, fence: Fence) -> TransactWriteItemTypeDef:
    """A transaction action that holds only while ``fence`` still holds the run."""
    return {
        "ConditionCheck": {
            "TableName": table,
            "Key": items.key(items.run_pk(run_id), items.META),
            "ConditionExpression": FENCE_CONDITION,
            "ExpressionAttributeNames": FENCE_NAMES,
            "ExpressionAttributeValues": {
                ":owner": items.s(fence.owner),
                ":fence_epoch": items.n(fence.epoch),
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def entry_put(table: str, item: Item) -> TransactWriteItemTypeDef:
    """A transaction action writing a journal entry unless its position is final."""
    return {
        "Put": {
            "TableName": table,
            "Item": item,
            "ConditionExpression": ENTRY_WRITABLE,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":retrying": items.s(EntryStatus.RETRYING.value),
                ":waiting": items.s(EntryStatus.WAITING.value),
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def chunks(actions: list[TransactWriteItemTypeDef]) -> list[list[TransactWriteItemTypeDef]]:
    """Split ``actions`` into transactions, leaving room for a fence check in each."""
    out: list[list[TransactWriteItemTypeDef]] = [[]]
    size = 0
    for action in actions:
        body: Any = action.get("Put") or action.get("Update") or {}
        action_size = items.item_size(
            body.get("Item") or body.get("ExpressionAttributeValues") or {}
        )
        full = len(out[-1]) >= MAX_TRANSACTION_ACTIONS - 1
        if out[-1] and (full or size + action_size > MAX_TRANSACTION_BYTES):
            out.append([])
            size = 0
        out[-1].append(action)
        size += action_size
    return out


def chunks_with_tail(
    actions: list[TransactWriteItemTypeDef], tail: list[TransactWriteItemTypeDef]
) -> list[list[TransactWriteItemTypeDef]]:
    """:func:`chunks` of ``actions + tail``, with all of ``tail`` in the last transaction."""
    out = chunks([*actions, *tail])
    if len(out) > 1 and len(out[-1]) < len(tail):  # the tail straddles a boundary
        move = len(tail) - len(out[-1])
        out[-1][:0] = out[-2][-move:]
        del out[-2][-move:]
        if not out[-2]:
            del out[-2]
    return out


# -- writes that recognise their own retry -----------------------------------------------------


def write_token(*parts: object) -> str:
    """A deterministic token naming one write: a hash of everything it writes (36 characters).

    botocore retries a write whose response was lost (read timeout, 5xx), and
    the retry of an applied conditional write fails its own condition. The
    token is sent as a transaction's ``ClientRequestToken`` (DynamoDB then
    answers the retry with success) and stamped on the items the write
    conditions (``write_id``), so a read-back of the failed condition can tell
    our own write from another's where the token is ignored (moto). Hashing the
    full parameters, with the fence's owner and epoch among them, means a
    legitimately different write never reuses a token (DynamoDB would raise
    IdempotentParameterMismatchException) and a token never outlives the
    invocation that owns it, well inside DynamoDB's 10-minute window.
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:36]


def stamp(actions: list[TransactWriteItemTypeDef], token: str) -> list[TransactWriteItemTypeDef]:
    """Copies of ``actions`` whose conditional writes set ``write_id`` to ``token``."""
    stamped = []
    for action in actions:
        action = copy.copy(action)  # noqa: PLW2901 - a copy of the loop variable, on purpose
        if "Put" in action and "ConditionExpression" in action["Put"]:
            put = action["Put"] = copy.copy(action["Put"])
            put["Item"] = {**put["Item"], WRITE_ID: items.s(token)}
        elif "Update" in action and "ConditionExpression" in action["Update"]:
            update = cast("dict[str, Any]", copy.copy(action["Update"]))
            update["UpdateExpression"] = stamped_expression(update["UpdateExpression"])
            update["ExpressionAttributeNames"] = {
                **update.get("ExpressionAttributeNames", {}),
                "#write_id": WRITE_ID,
            }
            update["ExpressionAttributeValues"] = {
                **update.get("ExpressionAttributeValues", {}),
                ":write_id": items.s(token),
            }
            action["Update"] = cast("UpdateTypeDef", update)
        stamped.append(action)
    return stamped


def stamped_expression(expression: str) -> str:
    """``expression`` that also sets ``#write_id = :write_id``."""
    if expression.startswith("SET "):
        return f"SET #write_id = :write_id, {expression[4:]}"
    return f"SET #write_id = :write_id {expression}"


def ours(old: Item | None, token: str) -> bool:
    """Whether ``old`` (an item read back from a failed condition) carries our write."""
    return old is not None and items.get_s(old, WRITE_ID) == token


def applied(reasons: list[dict[str, Any]], token: str) -> bool:
    """Whether a cancelled transaction was in fact applied before (by its retried first try).

    A transaction is atomic: one item stamped with its token proves all of it happened.
    """
    return any(ours(cast("Item | None", reason.get("Item")), token) for reason in reasons)


def retried(exc: ClientError) -> bool:
    """Whether botocore retried the call that failed: its first try may have been applied."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0


# -- failures ------------------------------------------------------------------------------


def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc``."""
    return exc.response.get("Error", {}).get("Code", "")


def cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    """The per-action reasons of a cancelled transaction (re-raises any other error)."""
    if error_code(exc) != "TransactionCanceledException":
        raise exc
    return cast("list[dict[str, Any]]", exc.response.get("CancellationReasons", []))


def failed_condition(reasons: list[dict[str, Any]], index: int) -> bool:
    """Whether action ``index`` failed its condition."""
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


def conflicted(reasons: list[dict[str, Any]]) -> bool:
    """Whether another transaction on the same item was in flight (worth a retry)."""
    return any(reason.get("Code") == "TransactionConflict" for reason in reasons)


def fenced_failure(
    run_id: str,
    fence: Fence,
    actions: list[TransactWriteItemTypeDef],
    reasons: list[dict[str, Any]],
) -> Exception | None:
    """The error a cancelled fenced transaction stands for, as the memory store raises it."""
    for index, action in enumerate(actions):
        if not failed_condition(reasons, index) or not _fenced_action(action):
            continue
        if "Put" in action:  # only journal entries are conditional puts
            seq = items.get_n(cast("Item", action["Put"]["Item"]), "seq")
            return LeaseLostError(f"run {run_id}: journal position {seq} is already final")
        old = cast("Item | None", reasons[index].get("Item"))
        if old is None:
            return RunNotFoundError(run_id)
        return lease_lost(run_id, fence, items.get_s(old, "lease_owner"), items.get_n(old, "epoch"))
    return None


def _fenced_action(action: TransactWriteItemTypeDef) -> bool:
    """Whether ``action`` is a journal put or a check or update of the run's META item.

    A checkpoint that parks the run also updates its queue's counter, whose
    failed condition means "room again", not a lost lease.
    """
    if "Put" in action:
        return True
    body: Any = action.get("Update") or action.get("ConditionCheck") or {}
    return items.get_s(body.get("Key", {}), "sk") == items.META


def lease_lost(run_id: str, fence: Fence, owner: str | None, epoch: int) -> LeaseLostError:
    """The error of a write whose fence no longer holds."""
    return LeaseLostError(
        f"run {run_id} is held by {owner!r} at epoch {epoch}, "
        f"not {fence.owner!r} at epoch {fence.epoch}"
    )


def claim_put(
    table: str, claim: Item, created_at: dt.datetime, gone: str | None
) -> TransactWriteItemTypeDef:
    """A transaction action taking an idempotency claim if absent or expired at ``created_at``.

    With ``gone``, also if it still names that run, which no longer exists
    (deleted after its retention while the claim stayed).
    """
    condition = "attribute_not_exists(pk) OR #expires_at <= :created"
    names = {"#expires_at": "expires_at"}
    values: Item = {":created": items.s(items.iso(created_at))}
    if gone is not None:
        condition += " OR #run_id = :gone"
        names["#run_id"] = "run_id"
        values[":gone"] = items.s(gone)
    return {
        "Put": {
            "TableName": table,
            "Item": claim,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
