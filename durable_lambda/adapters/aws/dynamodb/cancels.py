"""Cancel a run from outside, on DynamoDB (a mixin of the run store).

One read, then one ``TransactWriteItems``: the META update, conditioned on the
run being exactly as read (status, epoch, lease owner), and its timeline event.
A worker that took or checkpointed the run in between makes the condition
fail, and the cancel reads again and decides anew (``transitions.cancel_action``),
so a cancel never races an invocation: either the run is CANCELED at once, or
the live invocation holding it is flagged and ends it at its next step boundary.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.adapters.aws.dynamodb.expressions import Update
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import CANCELED_ERROR, CancelAction, CancelResult, RunRecord
from durable_lambda.engine.transitions import cancel_action, cancel_event, canceled
from durable_lambda.errors import RetryableError, RunFinishedError, RunNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef, UpdateTypeDef

    from durable_lambda.engine.records import TimelineEvent
    from durable_lambda.values import StoredValue, ValueStore

#: Reads a cancel makes of a run that keeps changing under it before giving up.
CANCEL_ATTEMPTS = 5


def as_read(update: Update, run: RunRecord) -> None:
    """Condition ``update`` on the run being as read: status, epoch and lease owner."""
    status = update.value("read_status", items.s(run.status.value))
    epoch = update.value("read_epoch", items.n(run.epoch))
    owner = update.name("lease_owner")
    held = (
        f"{owner} = {update.value('read_owner', items.s(run.lease_owner))}"
        if run.lease_owner is not None
        else f"attribute_not_exists({owner})"
    )
    update.require(f"{update.name('status')} = {status} AND {update.name('epoch')} = {epoch}")
    update.require(held)


def request_update(table: str, run: RunRecord) -> UpdateTypeDef:
    """Flag a run a live invocation holds: its fenced writes are refused from now on."""
    update = Update()
    update.set(items.CANCEL_REQUESTED, {"BOOL": True})
    as_read(update, run)
    key = items.key(items.run_pk(run.run_id), items.META)
    return cast(
        "UpdateTypeDef", update.request(table, key, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    )


def cancel_update(
    table: str, old: RunRecord, new: RunRecord, error: StoredValue, retention: dt.timedelta
) -> UpdateTypeDef:
    """Turn ``old``, which nobody executes, into ``new`` (CANCELED, next epoch)."""
    update = Update()
    update.set("status", items.s(new.status.value))
    update.set("epoch", items.n(new.epoch))
    at = items.iso(new.updated_at)
    update.set("updated_at", items.s(at))
    update.set("finished_at", items.s(at))
    update.set("ttl", items.n(items.epoch_seconds(new.updated_at + retention)))
    gsi2pk, gsi2sk = items.status_index_keys(new)
    update.set("gsi2pk", items.s(gsi2pk))
    update.set("gsi2sk", items.s(gsi2sk))
    update.set_value("error", error)
    for name in (
        "gsi3pk",
        "gsi3sk",
        "lease_owner",
        "lease_expiry",
        "wake_at",
        items.WAITING_CHILDREN,
        items.AWAITED_CHILDREN,
        items.AWAITED_WAKE,
        items.CANCEL_REQUESTED,
    ):
        update.remove(name)
    as_read(update, old)
    key = items.key(items.run_pk(old.run_id), items.META)
    return cast(
        "UpdateTypeDef", update.request(table, key, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    )


class RunCancels:
    """What :class:`~.runs.DynamoDBRunStore` does to cancel a run (a mixin)."""

    client: DynamoDBClient
    table: str
    values: ValueStore
    retention: dt.timedelta

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run store's own (a consistent read)."""
        raise NotImplementedError

    def event_put(self, run_id: str, event: TimelineEvent) -> TransactWriteItemTypeDef:
        """The run store's own (the put of one timeline event)."""
        raise NotImplementedError

    def cancel_run(self, run_id: str, at: dt.datetime, detail: str) -> CancelResult:
        """Cancel the run (see ``ports.RunStore.cancel_run``): a read, then one transaction.

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It has already finished; nothing changed.
            RetryableError: It changed under every attempt (workers racing).
        """
        for _ in range(CANCEL_ATTEMPTS):
            run = self.get_run(run_id)
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            action = cancel_action(run, at)
            if action is CancelAction.FINISHED:
                raise RunFinishedError(run_id, run.status.value)
            if action is CancelAction.REQUEST:
                new = replace(run, cancel_requested=True)
                update = request_update(self.table, run)
            else:
                new = canceled(run, at, detail)
                error = self.values.store_error("error", ErrorInfo(CANCELED_ERROR, detail))
                update = cancel_update(self.table, run, new, error, self.retention)
            event = self.event_put(run_id, cancel_event(action, at, detail))
            if self._write(run, [{"Update": update}, event]):
                return CancelResult(action, new, run.status)
        raise RetryableError(
            f"run {run_id} changed under each of {CANCEL_ATTEMPTS} cancel attempts; try again"
        )

    def _write(self, run: RunRecord, actions: list[TransactWriteItemTypeDef]) -> bool:
        """Write ``actions``; ``False`` when the run is no longer as read (read again).

        The token makes botocore's retry of an applied try succeed on DynamoDB,
        and is stamped on the META item so the retry recognises its own write
        where the token is ignored (moto): a cancel never reports its own
        success as "already finished".
        """
        token = writes.write_token("cancel", run.run_id, run.epoch, run.status.value, actions)
        actions = writes.stamp(actions, token)
        try:
            self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
        except ClientError as exc:
            reasons = writes.cancellation_reasons(exc)
            if writes.applied(reasons, token):
                return True  # our own first try, applied before its response was lost
            if writes.failed_condition(reasons, 0) or writes.conflicted(reasons):
                return False
            raise
        return True
