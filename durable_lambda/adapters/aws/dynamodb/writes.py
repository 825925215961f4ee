"""The conditional writes of the DynamoDB run store, and what their failures mean. No I/O.

Each builder returns one request (or one transaction action) whose condition
is the store's rule: a lease is taken only when ``lease_outcome`` would say
TAKEN; every write of an invocation is fenced by ``lease_owner`` and ``epoch``;
a journal position is written only while empty, RETRYING, WAITING or STARTED.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import fences
from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.expressions import Update, with_set
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.metadata import encode_doc
from durable_lambda.engine.records import ANY_EPOCH, Fence, RunRecord
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

ENTRY_WRITABLE = "attribute_not_exists(pk) OR #status IN (:retrying, :waiting, :started)"
#: The token of the last write that stamped an item (see :func:`write_token`).
WRITE_ID = "write_id"


def lease_request(
    table: str,
    run_id: str,
    *,
    epoch: int,
    owner: str,
    expiry: dt.datetime,
    now: dt.datetime,
    counted: bool = False,
) -> UpdateItemInputTypeDef:
    """The one UpdateItem that takes a run's lease, conditioned like ``lease_outcome``."""
    update = Update()
    running = update.value("running", items.s(RunStatus.RUNNING.value))
    at = update.value("now", items.s(items.iso(now)))
    update.set_to("status", running)
    update.set("lease_owner", items.s(owner))
    update.set("lease_expiry", items.s(items.iso(expiry)))
    update.set_to("updated_at", at)
    update.set("gsi2pk", items.s(f"STATUS#{RunStatus.RUNNING.value}"))
    update.set("gsi2sk", items.s(f"{items.iso(expiry)}#{run_id}"))
    update.remove("gsi3pk")
    update.remove("gsi3sk")
    update.add("invocations", "one", items.n(1))
    update.remove(items.WAITING_CHILDREN)
    update.remove(items.AWAITED_CHILDREN)
    update.remove(items.AWAITED_WAKE)
    status = update.name("status")
    if epoch == ANY_EPOCH:
        # A child's nudge: the parent at any epoch, but only while suspended on its children.
        suspended = update.value("suspended", items.s(RunStatus.SUSPENDED.value))
        waiting = update.name(items.WAITING_CHILDREN)
        condition = f"{status} = {suspended} AND attribute_exists({waiting})"
        if counted:
            # A nudge naming its child: its end is to be counted first while a count is kept.
            condition += f" AND attribute_not_exists({update.name(items.AWAITED_WAKE)})"
        update.require(condition)
    else:
        lease_expiry, wake_at = update.name("lease_expiry"), update.name("wake_at")
        resumable = ", ".join(
            update.value(f"r{i}", items.s(s.value)) for i, s in enumerate(sorted(RESUMABLE))
        )
        update.require(
            f"{update.name('epoch')} = {update.value('epoch', items.n(epoch))}"
            f" AND (({status} = {running} AND (attribute_not_exists({lease_expiry})"
            f" OR {lease_expiry} <= {at})) OR ({status} IN ({resumable})"
            f" AND (attribute_not_exists({wake_at}) OR {wake_at} <= {at})))"
        )
    return cast(
        "UpdateItemInputTypeDef",
        update.request(
            table,
            items.key(items.run_pk(run_id), items.META),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )


def child_end_request(table: str, run_id: str, child_id: str) -> UpdateItemInputTypeDef:
    """The UpdateItem counting ``child_id``'s end on its parent: taken out of the awaited set.

    Conditioned on the child still being in the set, so a duplicate nudge
    changes nothing; either way the parent's META comes back (new or as it
    stood) for ``child_ended``'s decision.
    """
    awaited = f"#{items.AWAITED_CHILDREN}"
    return cast(
        "UpdateItemInputTypeDef",
        {
            "TableName": table,
            "Key": items.key(items.run_pk(run_id), items.META),
            "UpdateExpression": f"DELETE {awaited} :children",
            "ConditionExpression": f"contains({awaited}, :child)",
            "ExpressionAttributeNames": {awaited: items.AWAITED_CHILDREN},
            "ExpressionAttributeValues": {
                ":children": {"SS": [child_id]},
                ":child": items.s(child_id),
            },
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )


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
    _set_index_keys(update, new)
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
    if (new.metadata, new.metadata_marks) != (old.metadata, old.metadata_marks):
        update.set("metadata", items.s(encode_doc(new.metadata, new.metadata_marks)))
    _set_waiting(update, new)
    if output is not None:
        update.set_value("output", output)
    if error is not None:
        update.set_value("error", error)
    if new.status.is_terminal:
        update.remove(items.CANCEL_REQUESTED)
    return fenced(update, table, new.run_id, fence, canceling=new.status is RunStatus.CANCELED)


def _set_waiting(update: Update, new: RunRecord) -> None:
    """Set what a run suspended on its children keeps, or remove it (see ``layout``)."""
    if new.waiting_children:
        update.set(items.WAITING_CHILDREN, {"BOOL": True})
    else:
        update.remove(items.WAITING_CHILDREN)
    if new.awaited_children:
        update.set(items.AWAITED_CHILDREN, {"SS": sorted(new.awaited_children)})
    else:
        update.remove(items.AWAITED_CHILDREN)
    if new.awaited_wake is not None:
        update.set(items.AWAITED_WAKE, items.n(new.awaited_wake))
    else:
        update.remove(items.AWAITED_WAKE)


def _set_index_keys(update: Update, new: RunRecord) -> None:
    """The status index keys of ``new``, and its due-index keys (removed when not due)."""
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


def metadata_update(table: str, run_id: str, fence: Fence, document: str) -> UpdateTypeDef:
    """A fenced Update setting the run's metadata document (beside a journal put)."""
    update = Update()
    update.set("metadata", items.s(document))
    return fenced(update, table, run_id, fence)


def fenced(
    update: Update, table: str, run_id: str, fence: Fence, *, canceling: bool = False
) -> UpdateTypeDef:
    """``update`` of the run's META item, applied only while ``fence`` holds."""
    update.require(fence_condition(update, fence, canceling=canceling))
    return cast(
        "UpdateTypeDef",
        update.request(
            table,
            items.key(items.run_pk(run_id), items.META),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )


def fence_condition(update: Update, fence: Fence, *, canceling: bool = False) -> str:
    """``fence`` holds the run (owner, epoch) and, unless ``canceling``, no cancel waits."""
    owner = update.value("owner", items.s(fence.owner))
    epoch = update.value("fence_epoch", items.n(fence.epoch))
    held = f"{update.name('lease_owner')} = {owner} AND {update.name('epoch')} = {epoch}"
    return held if canceling else f"{held} AND {fences.not_requested(update)}"


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
    at_value = update.value("at", items.s(items.iso(at)))
    update.set_to("updated_at", at_value)
    update.set_to("finished_at", at_value)
    update.set("ttl", items.n(items.epoch_seconds(at + retention)))
    update.set("gsi2pk", items.s(f"STATUS#{RunStatus.FAILED.value}"))
    # Out of RUNNING, the status index sorts by creation, which gsi1sk already holds.
    update.set_to("gsi2sk", update.name("gsi1sk"))
    epoch_name = update.name("epoch")
    update.set_to("epoch", f"{epoch_name} + {update.value('one', items.n(1))}")
    update.set_value("error", error)
    update.remove("lease_owner")
    update.remove("lease_expiry")
    update.remove("gsi3pk")
    update.remove("gsi3sk")
    status, lease_expiry = update.name("status"), update.name("lease_expiry")
    terminal = ", ".join(
        update.value(f"t{i}", items.s(s.value)) for i, s in enumerate(sorted(TERMINAL))
    )
    running = update.value("running", items.s(RunStatus.RUNNING.value))
    live = (
        f"({status} = {running} AND attribute_exists({lease_expiry})"
        f" AND {lease_expiry} > {at_value})"
    )
    update.require(
        f"attribute_exists(pk) AND {epoch_name} = {update.value('epoch', items.n(epoch))}"
        f" AND NOT {status} IN ({terminal}) AND NOT {live}"
    )
    # Its retry, once applied, finds the run terminal: the token tells it was us.
    update.set(WRITE_ID, items.s(write_token("fail", run_id, update.expression, update.values)))
    return cast(
        "UpdateItemInputTypeDef",
        update.request(
            table,
            items.key(items.run_pk(run_id), items.META),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )


def token_of(request: UpdateItemInputTypeDef) -> str:
    """The ``write_id`` a request stamps (``""`` for none)."""
    values = cast("Item", request.get("ExpressionAttributeValues", {}))
    return items.get_s(values, f":{WRITE_ID}") or ""


def fence_check(table: str, run_id: str, fence: Fence) -> TransactWriteItemTypeDef:
    """A transaction action that holds only while ``fence`` still holds the run."""
    check = Update()
    check.require(fence_condition(check, fence))
    body = check.request(
        table,
        items.key(items.run_pk(run_id), items.META),
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    return {"ConditionCheck": cast("Any", body)}


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
                ":started": items.s(EntryStatus.STARTED.value),
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
            update = with_set(cast("dict[str, Any]", action["Update"]), WRITE_ID, items.s(token))
            action["Update"] = cast("UpdateTypeDef", update)
        stamped.append(action)
    return stamped


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

#: Attempts at a write that lost a race with another writer of the same item
#: (a transaction conflict, a versioned put, a grant whose waiter count moved).
CONFLICT_ATTEMPTS = 5
CONDITION_FAILED = "ConditionalCheckFailedException"


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
        return fences.refusal(run_id, fence, old)
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
