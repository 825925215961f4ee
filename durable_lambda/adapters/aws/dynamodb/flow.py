"""Flow control on DynamoDB: counters that know their holders, parked runs, rates, cron cursors.

The semantics are those of :class:`~durable_lambda.adapters.memory.flow.MemoryFlowStore`
(the same contract suite runs on both); the item layout is in
:mod:`~durable_lambda.adapters.aws.dynamodb.slots`. Request budget:

- ``acquire``: one ``UpdateItem`` (a refusal is classified from the old item);
  a run that already holds a unit pays a second one to extend its expiry;
- ``release``, ``reap``, ``set_control``: one ``UpdateItem``; ``state``: one ``GetItem``;
- parking: no request of its own, it rides in the run's checkpoint transaction;
- ``grant_next``: one ``Query`` (the counter and the first WAIT item, which sort
  next to each other) and, only when there is a waiter and room, one
  ``TransactWriteItems``;
- ``keys_with_waiters``: one ``Query`` of the ``by_status`` index;
- ``admit``: one ``GetItem``, plus one conditional ``PutItem`` when admitted;
- ``last_fired``: one ``GetItem``; ``mark_fired``: one conditional ``PutItem``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import slots, writes
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.engine.records import ResumeMessage
from durable_lambda.engine.slots import (
    AcquireOutcome,
    AcquireResult,
    Holder,
    QueueState,
    SlotKey,
    rate_decision,
    validate_limit_override,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: Stale WAIT items (their run canceled while parked) one ``grant_next`` may clear.
MAX_STALE_WAITERS = 25
#: The wait ``admit`` reports when the window stayed contended for every attempt.
CONTENDED_RETRY = 1.0


class DynamoDBFlowStore:
    """:class:`~durable_lambda.ports.SlotStore`, ``RateStore`` and ``ScheduleStore`` on one table.

    Args:
        client: A low-level boto3 DynamoDB client.
        table_name: The table (keys and indexes as in ``template.yaml``).
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        """Wire the store to its table."""
        self.client = client
        self.table = table_name

    # -- slots -----------------------------------------------------------------------

    def acquire(
        self,
        key: SlotKey,
        run_id: str,
        expiry: dt.datetime,
        code_limit: int | None,
    ) -> AcquireResult:
        """Take (or keep) a unit for ``run_id`` in one conditional update."""
        take, refresh = slots.acquire_requests(self.table, key, run_id, expiry, code_limit)
        state = QueueState(key, code_limit=code_limit)
        for _ in range(writes.CONFLICT_ATTEMPTS):
            try:
                response = self.client.update_item(**take)
            except ClientError as exc:
                old = self._refused(exc)
                state = dataclasses.replace(slots.parse_counter(key, old), code_limit=code_limit)
                if _holder_expiry(state, run_id) == expiry:
                    # Our own take, applied before a lost response and retried by botocore.
                    return AcquireResult(AcquireOutcome.ACQUIRED, state)
            else:
                return AcquireResult(
                    AcquireOutcome.ACQUIRED, slots.parse_counter(key, response["Attributes"])
                )
            if not state.holds(run_id):
                outcome = AcquireOutcome.PAUSED if state.paused else AcquireOutcome.FULL
                return AcquireResult(outcome, state)
            try:  # already a holder (granted, or kept across a deadline hop): extend it
                response = self.client.update_item(**refresh)
            except ClientError as exc:
                self._refused(exc)
                continue  # reaped or released meanwhile: take a unit afresh
            return AcquireResult(
                AcquireOutcome.HELD, slots.parse_counter(key, response["Attributes"])
            )
        return AcquireResult(AcquireOutcome.FULL, state)

    def release(self, key: SlotKey, run_id: str) -> QueueState | None:
        """Give back ``run_id``'s unit; ``None`` if it held none."""
        return self._drop_holder(key, run_id, None)

    def reap(self, key: SlotKey, holder: Holder) -> bool:
        """Remove ``holder`` if it is still there with the same expiry."""
        return self._drop_holder(key, holder.run_id, holder.expiry) is not None

    def _drop_holder(
        self, key: SlotKey, run_id: str, expiry: dt.datetime | None
    ) -> QueueState | None:
        update = slots.drop_holder(run_id)
        holder = update.name(slots.holder_attribute(run_id))
        if expiry is None:
            update.require(f"attribute_exists({holder})")
        else:
            update.require(f"{holder} = {update.value('expiry', items.s(items.iso(expiry)))}")
        try:
            response = self.client.update_item(
                **update.request(
                    self.table,
                    slots.counter_key(key),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except ClientError as exc:
            old = self._refused(exc)
            if old is not None and writes.retried(exc):
                # The holder is gone and our first try may have removed it before its
                # response was lost: report the counter, so the caller hands the unit on.
                state = slots.parse_counter(key, old)
                return None if state.holds(run_id) else state
            return None
        return slots.parse_counter(key, response["Attributes"])

    def grant_next(
        self,
        key: SlotKey,
        grant_expiry: dt.datetime,
        now: dt.datetime,
    ) -> ResumeMessage | None:
        """Hand a unit to the first parked run if there is room: one query, one transaction."""
        conflicts = stale = 0
        while conflicts < writes.CONFLICT_ATTEMPTS and stale <= MAX_STALE_WAITERS:
            counter, waiter = self._head(key)
            state = slots.parse_counter(key, counter)
            if waiter is None or not state.has_room:
                return None
            actions = slots.grant_actions(
                self.table, key, waiter, state.waiting, expiry=items.iso(grant_expiry), now=now
            )
            try:
                self.client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                reasons = writes.cancellation_reasons(exc)
                if writes.failed_condition(reasons, 2):  # its run is no longer parked
                    stale += 1
                    self._drop_waiter(key, waiter, state.waiting)
                    continue
                if writes.failed_condition(reasons, 0):
                    old = slots.parse_counter(key, cast("Item", reasons[0].get("Item") or {}))
                    if not old.has_room or old.holds(items.req_s(waiter, "run_id")):
                        return None
                # The waiter count moved, another grant took the waiter, or a conflict.
                conflicts += 1
                continue
            return ResumeMessage(items.req_s(waiter, "run_id"), items.get_n(waiter, "epoch"))
        return None

    def _head(self, key: SlotKey) -> tuple[Item | None, Item | None]:
        """The counter and the first WAIT item: ``COUNTER`` sorts right before ``WAIT#``."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": items.s(slots.queue_pk(key))},
            ConsistentRead=True,
            Limit=2,
        )
        counter = waiter = None
        for item in response["Items"]:
            sk = items.get_s(item, "sk") or ""
            if sk == slots.COUNTER:
                counter = item
            elif sk.startswith(slots.WAIT_PREFIX) and waiter is None:
                waiter = item
        return counter, waiter

    def _drop_waiter(self, key: SlotKey, waiter: Item, waiting: int) -> None:
        try:
            self.client.transact_write_items(
                TransactItems=slots.drop_actions(self.table, key, waiter, waiting)
            )
        except ClientError as exc:
            writes.cancellation_reasons(exc)  # lost a race: the next read shows what won

    def state(self, key: SlotKey) -> QueueState:
        """The counter as stored (a consistent read)."""
        response = self.client.get_item(
            TableName=self.table, Key=slots.counter_key(key), ConsistentRead=True
        )
        return slots.parse_counter(key, response.get("Item"))

    def set_control(
        self,
        key: SlotKey,
        *,
        paused: bool | None = None,
        limit_override: int | None = None,
        clear_override: bool = False,
    ) -> QueueState:
        """Pause, resume or override the limit in one update."""
        validate_limit_override(limit_override)
        response = self.client.update_item(
            **slots.control_request(
                self.table,
                key,
                paused=paused,
                limit_override=limit_override,
                clear_override=clear_override,
            )
        )
        return slots.parse_counter(key, response["Attributes"])

    def keys_with_waiters(self, limit: int = 100) -> list[SlotKey]:
        """Counters with parked runs, by key id: one Query of the ``by_status`` index."""
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "IndexName": items.STATUS_INDEX,
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": {":pk": items.s(slots.WAITING_PK)},
            "Limit": limit,
        }
        found = itertools.islice(query_items(self.client, request), limit)
        # The index is eventually consistent: a counter emptied a moment ago may linger.
        return [slots.parse_key(item) for item in found if items.get_n(item, "waiting") > 0]

    # -- rate limits -----------------------------------------------------------------

    def admit(self, key: str, limit: int, period: float, now: dt.datetime) -> float:
        """Record a start if the sliding window allows it (optimistic, versioned)."""
        item_key = items.key(f"RATE#{key}", "WINDOW")
        for attempt in range(writes.CONFLICT_ATTEMPTS):
            old = self.client.get_item(TableName=self.table, Key=item_key, ConsistentRead=True).get(
                "Item"
            )
            starts = [
                float(cast("str", v["N"])) for v in (old or {}).get("starts", {}).get("L", [])
            ]
            decision = rate_decision(starts, limit, period, now.timestamp())
            if not decision.admitted:
                return decision.retry_in
            version = items.get_n(old, "version") if old is not None else 0
            window: Item = {
                **item_key,
                "type": items.s("rate"),
                "starts": {"L": [items.n(float(t)) for t in decision.starts]},
                "version": items.n(version + 1),
                # Tells this start's retried put (first try applied) from another's.
                writes.WRITE_ID: items.s(writes.write_token(key, now.isoformat(), attempt, old)),
                # An idle window is worthless once a period has passed.
                "ttl": items.n(math.ceil(now.timestamp() + period) + 60),
            }
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(pk)"}
                if old is None
                else {
                    "ConditionExpression": "#version = :version",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":version": items.n(version)},
                }
            )
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=window,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **condition,
                )
            except ClientError as exc:
                if writes.ours(self._refused(exc), items.req_s(window, writes.WRITE_ID)):
                    return 0.0  # our own start, applied before its response was lost
                continue  # another start was recorded meanwhile: decide again
            return 0.0
        return CONTENDED_RETRY

    # -- cron ------------------------------------------------------------------------

    def last_fired(self, task_id: str) -> dt.datetime | None:
        """The task's last fired occurrence."""
        item = self.client.get_item(
            TableName=self.table, Key=_cursor_key(task_id), ConsistentRead=True
        ).get("Item")
        return items.get_time(item, "fired") if item is not None else None

    def mark_fired(self, task_id: str, previous: dt.datetime | None, fired: dt.datetime) -> bool:
        """Move the cursor from ``previous`` to ``fired``; False if another scheduler moved it."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous is None
            else {
                "ConditionExpression": "#fired = :previous",
                "ExpressionAttributeNames": {"#fired": "fired"},
                "ExpressionAttributeValues": {":previous": items.s(items.iso(previous))},
            }
        )
        item: Item = {
            **_cursor_key(task_id),
            "type": items.s("cron_cursor"),
            "fired": items.s(items.iso(fired)),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except ClientError as exc:
            old = self._refused(exc)
            # At ``fired`` already: our retried move, or another scheduler's move to the same
            # occurrence; either way it is fired once (its run has a per-occurrence key).
            return old is not None and items.get_time(old, "fired") == fired
        return True

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _refused(exc: ClientError) -> Item | None:
        """The old item of a failed condition (re-raises any other error)."""
        if writes.error_code(exc) != writes.CONDITION_FAILED:
            raise exc
        return cast("Item | None", cast("dict[str, Any]", exc.response).get("Item"))


def _holder_expiry(state: QueueState, run_id: str) -> dt.datetime | None:
    return next((h.expiry for h in state.holders if h.run_id == run_id), None)


def _cursor_key(task_id: str) -> Item:
    return items.key(f"SCHEDULE#{task_id}", "CURSOR")
