"""The run store on DynamoDB: one table, conditional writes, one request per hot operation.

Item layout lives in :mod:`~durable_lambda.adapters.aws.dynamodb.layout`, the
conditional requests in :mod:`~durable_lambda.adapters.aws.dynamodb.writes`; the
semantics are those of :class:`~durable_lambda.adapters.memory.MemoryRunStore`
(the same contract suite runs on both). Request budget per operation:

- ``take_lease``: one ``UpdateItem`` (a refusal is classified from the old item);
- ``record_entry``: one ``TransactWriteItems`` (fence check + journal entry);
- ``checkpoint``: one ``TransactWriteItems`` (fenced META update + entries,
  events, timer; a parking run adds its queue counter's update, conditioned on
  "no room", and its WAIT item). The new record is computed from the one
  ``take_lease`` returned, kept per (run, owner, epoch), so nothing is read
  back; a store that did not take the lease reads the run once first;
- ``load_journal``: one ``Query`` per 1 MB page; ``load_history`` the same
  Query, bringing the run's wait tokens along (see :mod:`.histories`).

Timers and the count of a parent's children live in :mod:`.wakeups`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import batches, creates, fences, slots, writes
from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.cancels import RunCancels
from durable_lambda.adapters.aws.dynamodb.expressions import Update
from durable_lambda.adapters.aws.dynamodb.histories import RunHistories, loaded_entry
from durable_lambda.adapters.aws.dynamodb.indexes import RunIndexes
from durable_lambda.adapters.aws.dynamodb.journal_copies import JournalCopies
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.adapters.aws.dynamodb.transactions import TransactionWrites
from durable_lambda.adapters.aws.dynamodb.wakeups import Wakeups
from durable_lambda.engine.journal import ErrorInfo, JournalEntry
from durable_lambda.engine.records import (
    Checkpoint,
    Fence,
    LeaseOutcome,
    LeaseResult,
    RunQuery,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.transitions import apply_checkpoint, lease_outcome
from durable_lambda.errors import (
    IdempotencyClaimConflictError,
    ReleaseNotFoldedError,
    RunExistsError,
    RunNotFoundError,
    SlotAvailableError,
)
from durable_lambda.values import StoredValue, ValueStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: Attempts at an idempotency claim: lost races, or a claim whose run was deleted.
CLAIM_ATTEMPTS = writes.CONFLICT_ATTEMPTS


class DynamoDBRunStore(TransactionWrites, Wakeups, JournalCopies, RunCancels, RunHistories):
    """:class:`~durable_lambda.ports.RunStore` on one DynamoDB table.

    Args:
        client: A low-level boto3 DynamoDB client.
        table_name: The table (keys and indexes as in ``template.yaml``).
        values: Where values go: inline up to its limit, else to the blob store.
        retention: How long a finished run is kept (the META item's ``ttl``).
        timer_shards: Partitions the timer index is spread over.
        held_runs: Records of runs this process holds, kept so a checkpoint
            needs no read (bounded; a miss costs one consistent read).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        values: ValueStore,
        *,
        retention: dt.timedelta = dt.timedelta(days=30),
        timer_shards: int = 4,
        held_runs: int = 1024,
    ) -> None:
        """Wire the store to its table."""
        self.client = client
        self.table = table_name
        self.values = values
        self.retention = retention
        self.timer_shards = timer_shards
        self._held: OrderedDict[tuple[str, str, int], RunRecord] = OrderedDict()
        self._held_limit = held_runs
        self._lock = threading.Lock()
        self._event_counter = itertools.count()
        self.indexes = RunIndexes(client, table_name, self._hydrate, self.get_run)
        self._process_tag = os.urandom(3).hex()

    # -- runs ------------------------------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        idempotency_ttl: dt.timedelta | None = None,
        events: Sequence[TimelineEvent] = (),
    ) -> RunRecord:
        """Create ``run``; with an idempotency key already claimed, return that run instead.

        One request: a ``PutItem``, or with a key or ``events`` one
        ``TransactWriteItems`` (claim, META, events), so the TRIGGERED event
        costs no request of its own and is written only with its run.
        """
        put_meta = self.meta_put(run)
        token = items.get_s(cast("Item", put_meta["Put"]["Item"]), writes.WRITE_ID) or ""
        actions = [put_meta, *(self.event_put(run.run_id, event) for event in events)]
        if run.idempotency_key is not None:
            return self._create_claimed(run, run.idempotency_key, actions, idempotency_ttl)
        if events:
            creates.create_with_events(self.client, run, actions, token)
            return run
        try:
            self.client.put_item(**put_meta["Put"])
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            if not writes.ours(cast("dict[str, Any]", exc.response).get("Item"), token):
                raise RunExistsError(run.run_id) from None
        return run

    def create_runs(
        self,
        runs: Sequence[RunRecord],
        events: Sequence[TimelineEvent],
        idempotency_ttl: dt.timedelta | None = None,
    ) -> list[RunRecord]:
        """Create ``runs`` with their events: one TransactWriteItems per 33 runs (3 actions each).

        A transaction refused (a key already claimed: a replayed trigger) is
        created again run by run through :meth:`create_run`.
        """
        return creates.create_many(self, runs, events, idempotency_ttl)

    def meta_put(self, run: RunRecord) -> TransactWriteItemTypeDef:
        """The conditional put of ``run``'s META item, its values stored first."""
        stored = items.RunValues(
            payload=self.values.store("payload", run.payload),
            output=self._store_secondary("output", run.output),
            error=self._store_error("error", run.error),
        )
        meta = items.run_item(run, stored, self.retention)
        # No fence names a create: a nonce tells this call's write from an earlier create.
        token = writes.write_token("create", meta, os.urandom(8).hex())
        return {
            "Put": {
                "TableName": self.table,
                "Item": {**meta, writes.WRITE_ID: items.s(token)},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _create_claimed(
        self,
        run: RunRecord,
        idempotency_key: str,
        actions: list[TransactWriteItemTypeDef],
        ttl: dt.timedelta | None,
    ) -> RunRecord:
        """Claim the key and put META and events (``actions``, META first) in one transaction."""
        claim = creates.claim_item(run, idempotency_key, ttl)
        gone: str | None = None
        token = items.get_s(cast("Item", actions[0]["Put"]["Item"]), writes.WRITE_ID) or ""
        for attempt in range(CLAIM_ATTEMPTS):
            put_claim = writes.claim_put(self.table, claim, run.created_at, gone)
            try:
                self.client.transact_write_items(
                    TransactItems=[put_claim, *actions],
                    ClientRequestToken=writes.write_token(token, put_claim, attempt),
                )
            except ClientError as exc:
                reasons = writes.cancellation_reasons(exc)
                if writes.applied(reasons, token):  # our own create, retried by botocore
                    return run
                if writes.failed_condition(reasons, 1):
                    raise RunExistsError(run.run_id) from None
                if writes.failed_condition(reasons, 0):
                    holder = items.get_s(cast("Item", reasons[0].get("Item", {})), "run_id") or ""
                    existing = self.get_run(holder)
                    if existing is not None:
                        return existing
                    gone = holder  # its run was deleted: take the claim over
                    continue
                if writes.conflicted(reasons):
                    continue
                raise
            return run
        raise IdempotencyClaimConflictError(run.task_id, idempotency_key, CLAIM_ATTEMPTS)

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's metadata (a consistent read), or ``None``."""
        response = self.client.get_item(
            TableName=self.table,
            Key=items.key(items.run_pk(run_id), items.META),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return self._hydrate(item) if item is not None else None

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        """The runs in order (``None`` when missing): one BatchGetItem per 100 runs."""
        found = batches.get_metas(self.client, self.table, run_ids)
        return [self._hydrate(found[r]) if r in found else None for r in run_ids]

    def take_lease(
        self,
        run_id: str,
        epoch: int,
        owner: str,
        expiry: dt.datetime,
        now: dt.datetime,
        *,
        counted: bool = False,
    ) -> LeaseResult:
        """Take the run for ``owner`` in one conditional update (see ``lease_outcome``)."""
        request = writes.lease_request(
            self.table, run_id, epoch=epoch, owner=owner, expiry=expiry, now=now, counted=counted
        )
        try:
            response = self.client.update_item(**request)
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            old = cast("Item | None", cast("dict[str, Any]", exc.response).get("Item"))
            if old is None:
                return LeaseResult(LeaseOutcome.NOT_FOUND)
            run = self._hydrate(old)
            if run.lease_owner == owner and run.epoch == epoch and run.status is RunStatus.RUNNING:
                # Our own update, applied before a lost response and retried by botocore.
                self._hold(run)
                return LeaseResult(LeaseOutcome.TAKEN, run)
            outcome = lease_outcome(run, epoch, now, counted=counted)
            # The condition said no: never report TAKEN for a write that did not happen.
            return LeaseResult(LeaseOutcome.BUSY if outcome is LeaseOutcome.TAKEN else outcome, run)
        run = self._hydrate(response["Attributes"])
        self._hold(run)
        return LeaseResult(LeaseOutcome.TAKEN, run)

    # -- journal ---------------------------------------------------------------------

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The journal in position order: one Query per page, large results from blobs."""
        query = self._prefix_query(run_id, items.STEP_PREFIX)
        return [loaded_entry(item, self.values) for item in query_items(self.client, query)]

    def record_entry(
        self, run_id: str, fence: Fence, entry: JournalEntry, metadata: str | None = None
    ) -> None:
        """Write one entry in one fenced transaction.

        The run's ``metadata`` document, when given, rides in the same
        transaction: the fence check becomes a fenced update of the META item.
        """
        put = self._entry_put(run_id, entry)
        fence_action = (
            writes.fence_check(self.table, run_id, fence)
            if metadata is None
            else {"Update": writes.metadata_update(self.table, run_id, fence, metadata)}
        )
        self._transact(run_id, fence, [fence_action, put])

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        """Apply ``checkpoint`` in one fenced transaction; return the run as it now stands."""
        output = self._store_secondary("output", checkpoint.output)
        error = self._store_error("error", checkpoint.error)
        actions = [self._entry_put(run_id, entry) for entry in checkpoint.entries]
        old = self._held_record(run_id, fence)
        new = apply_checkpoint(old, checkpoint)
        actions += [self.event_put(run_id, event) for event in checkpoint.events]
        wakes = [checkpoint.wake_at] if checkpoint.timer else []
        if checkpoint.park is not None:  # a parked run's ttl
            wakes.append(checkpoint.park.expires_at)
        for wake in wakes:
            if wake is not None:
                timer = items.timer_item(Timer(run_id, new.epoch, wake), self.timer_shards)
                actions.append({"Put": {"TableName": self.table, "Item": timer}})
        update = writes.checkpoint_update(
            table=self.table,
            fence=fence,
            old=old,
            new=new,
            output=output,
            error=error,
            retention=self.retention,
        )
        tail: list[TransactWriteItemTypeDef] = [{"Update": update}]
        if checkpoint.park is not None:  # parked only while the counter is still full
            tail += slots.park_actions(self.table, checkpoint.park, run_id, new.epoch)
        if checkpoint.release is not None:  # released only while nobody is parked
            tail += slots.release_actions(self.table, checkpoint.release, run_id)
        # Rare: more than one transaction holds. Entries go first, each batch fenced.
        *early, last = writes.chunks_with_tail(actions, tail)
        try:
            for chunk in early:
                self._transact(
                    run_id, fence, [writes.fence_check(self.table, run_id, fence), *chunk]
                )
            self._transact(run_id, fence, last)
        except SlotAvailableError:
            # The run is unchanged and still held: keep its record for the next checkpoint.
            if checkpoint.release is not None:
                raise ReleaseNotFoldedError(f"run {run_id}: release apart") from None
            raise
        except BaseException:
            self._forget(run_id, fence)
            raise
        self._forget(run_id, fence)
        self._hold(new)
        return new

    # -- timeline --------------------------------------------------------------------

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """Append events (unfenced): one PutItem, or BatchWriteItem for several."""
        puts = [self.event_put(run_id, event)["Put"]["Item"] for event in events]
        for start in range(0, len(puts), 25):
            batch = puts[start : start + 25]
            if len(batch) == 1:
                self.client.put_item(TableName=self.table, Item=batch[0])
                continue
            request: Any = {self.table: [{"PutRequest": {"Item": item}} for item in batch]}
            while request:
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or None

    def list_events(self, run_id: str) -> list[TimelineEvent]:
        """The timeline, oldest first."""
        query = self._prefix_query(run_id, items.EVENT_PREFIX)
        return [items.parse_event(item) for item in query_items(self.client, query)]

    def fail_run(
        self, run_id: str, error: ErrorInfo, event: TimelineEvent, *, epoch: int
    ) -> RunRecord | None:
        """Mark FAILED a run still at ``epoch``, not held live (one update); add ``event``."""
        stored = self.values.store_error("error", error)
        request = writes.fail_request(
            self.table, run_id, stored, event.at, self.retention, epoch=epoch
        )
        try:
            response = self.client.update_item(**request)
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            old = cast("Item | None", cast("dict[str, Any]", exc.response).get("Item"))
            if old is None or not writes.ours(old, writes.token_of(request)):
                return None
            # Our own update, applied before its response was lost and retried by botocore.
            self.add_events(run_id, [event])
            return self._hydrate(old)
        self.add_events(run_id, [event])
        return self._hydrate(response["Attributes"])

    def note_delivery_error(self, run_id: str, reason: str) -> None:
        """Remember the last delivery error (nothing happens for an unknown run)."""
        update = Update()
        update.set("last_delivery_error", items.s(reason))
        update.require("attribute_exists(pk)")
        try:
            self.client.update_item(
                **update.request(self.table, items.key(items.run_pk(run_id), items.META))
            )
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise

    # -- timers and recovery ---------------------------------------------------------

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs newest first, from the task index or the status index."""
        return self.indexes.list_runs(query)

    # -- helpers ---------------------------------------------------------------------

    def _hydrate(self, item: Item) -> RunRecord:
        run, stored = items.parse_run(item)
        return dataclasses.replace(
            run,
            payload=self.values.load(stored.payload),
            output=self.values.load(stored.output) if stored.output is not None else None,
            error=self.values.load_error(stored.error) if stored.error is not None else None,
        )

    def _store_secondary(self, what: str, text: str | None) -> StoredValue | None:
        return self.values.secondary.store(what, text) if text is not None else None

    def _store_error(self, what: str, error: ErrorInfo | None) -> StoredValue | None:
        return self.values.store_error(what, error) if error is not None else None

    def _entry_put(self, run_id: str, entry: JournalEntry) -> TransactWriteItemTypeDef:
        result, error = self.values.store_entry(entry)
        return writes.entry_put(self.table, items.entry_item(run_id, entry, result, error))

    def event_put(self, run_id: str, event: TimelineEvent) -> TransactWriteItemTypeDef:
        """The put of one timeline event (for a transaction)."""
        # Orders events of the same instant as written (within a process).
        counter = f"{next(self._event_counter):012d}{self._process_tag}"
        return {"Put": {"TableName": self.table, "Item": items.event_item(run_id, event, counter)}}

    def _transact(self, run_id: str, fence: Fence, actions: list[TransactWriteItemTypeDef]) -> None:
        """Write ``actions`` atomically; a cancellation raises what the memory store raises.

        The transaction's token (see :func:`.writes.write_token`) makes
        botocore's retry of an applied try succeed on DynamoDB, and is stamped on
        the items it conditions so the retry is recognised where tokens are ignored.
        """
        token = writes.write_token(run_id, fence.owner, fence.epoch, actions)
        actions = writes.stamp(actions, token)
        for attempt in range(writes.CONFLICT_ATTEMPTS):
            try:
                # A new token per conflict retry: the last try was cancelled, not applied.
                self.client.transact_write_items(
                    TransactItems=actions, ClientRequestToken=writes.write_token(token, attempt)
                )
            except ClientError as exc:
                reasons = writes.cancellation_reasons(exc)
                if writes.applied(reasons, token):
                    return  # our own first try, applied before its response was lost
                failure = writes.fenced_failure(run_id, fence, actions, reasons)
                if failure is not None:
                    raise failure from None
                if slots.park_refused(actions, reasons):
                    raise SlotAvailableError(f"run {run_id}: its queue has room again") from None
                if writes.conflicted(reasons) and attempt + 1 < writes.CONFLICT_ATTEMPTS:
                    continue
                raise
            return

    def _hold(self, run: RunRecord) -> None:
        """Keep the record of a run this process now holds, for its checkpoint."""
        if run.status is not RunStatus.RUNNING or run.lease_owner is None:
            return
        with self._lock:
            self._held[(run.run_id, run.lease_owner, run.epoch)] = run
            while len(self._held) > self._held_limit:
                self._held.popitem(last=False)

    def _forget(self, run_id: str, fence: Fence) -> None:
        with self._lock:
            self._held.pop((run_id, fence.owner, fence.epoch), None)

    def _held_record(self, run_id: str, fence: Fence) -> RunRecord:
        with self._lock:
            held = self._held.get((run_id, fence.owner, fence.epoch))
        if held is not None:
            return held
        run = self.get_run(run_id)  # the lease was taken through another store object
        if run is None:
            raise RunNotFoundError(run_id)
        if run.lease_owner != fence.owner or run.epoch != fence.epoch:
            raise fences.lease_lost(run_id, fence, run.lease_owner, run.epoch)
        return run

    def _prefix_query(self, run_id: str, prefix: str) -> QueryInputTypeDef:
        return {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": items.s(items.run_pk(run_id)),
                ":prefix": items.s(prefix),
            },
            "ConsistentRead": True,
        }
