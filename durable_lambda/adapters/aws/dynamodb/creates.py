"""Batched creates: many runs (a parent's children) in as few transactions as DynamoDB allows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.engine.records import RunRecord, TimelineEvent
from durable_lambda.errors import RunExistsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

TRANSACTION_CANCELED = "TransactionCanceledException"


class Creator(Protocol):
    """What a batched create needs of the run store."""

    client: DynamoDBClient
    table: str

    def meta_put(self, run: RunRecord) -> TransactWriteItemTypeDef:
        """The conditional put of a run's META item."""
        ...

    def event_put(self, run_id: str, event: TimelineEvent) -> TransactWriteItemTypeDef:
        """The put of a timeline event."""
        ...

    def create_run(self, run: RunRecord, idempotency_ttl: dt.timedelta | None = None) -> RunRecord:
        """Create one run (claims resolved one by one)."""
        ...

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """Append timeline events."""
        ...


def claim_item(run: RunRecord, idempotency_key: str, ttl: dt.timedelta | None) -> Item:
    """The claim of ``idempotency_key`` for ``run`` (expiring after ``ttl`` if given)."""
    claim: Item = {
        **items.claim_key(run.task_id, idempotency_key),
        "type": items.s("claim"),
        "run_id": items.s(run.run_id),
    }
    if ttl is not None:
        expiry = run.created_at + ttl
        claim["expires_at"] = items.s(items.iso(expiry))
        claim["ttl"] = items.n(items.epoch_seconds(expiry))
    return claim


def create_many(
    store: Creator,
    runs: Sequence[RunRecord],
    events: Sequence[TimelineEvent],
    ttl: dt.timedelta | None,
) -> list[RunRecord]:
    """Create ``runs`` with their events; see ``DynamoDBRunStore.create_runs``.

    Each run's actions (its claim, META and event) stay in one transaction;
    transactions are packed up to DynamoDB's action and size limits. A
    refused transaction (a claim already held: a replayed trigger; or a
    conflict) wrote nothing, and its runs are created one by one.
    """
    groups: list[list[TransactWriteItemTypeDef]] = []
    for run, event in zip(runs, events, strict=True):
        group = [store.meta_put(run), store.event_put(run.run_id, event)]
        if run.idempotency_key is not None:
            claim = claim_item(run, run.idempotency_key, ttl)
            group.insert(0, writes.claim_put(store.table, claim, run.created_at, None))
        groups.append(group)
    created: list[RunRecord] = []
    start = 0
    for size in _packed(groups):
        chunk = range(start, start + size)
        actions = [action for i in chunk for action in groups[i]]
        try:
            store.client.transact_write_items(
                TransactItems=actions, ClientRequestToken=writes.write_token("create", actions)
            )
        except ClientError as exc:
            if writes.error_code(exc) != TRANSACTION_CANCELED:
                raise
            created += [_create_one(store, runs[i], events[i], ttl) for i in chunk]
        else:
            created += [runs[i] for i in chunk]
        start += size
    return created


def _create_one(
    store: Creator, run: RunRecord, event: TimelineEvent, ttl: dt.timedelta | None
) -> RunRecord:
    try:
        got = store.create_run(run, ttl)
    except RunExistsError:
        # Run ids are fresh: an existing META of this id is our own batch's write,
        # applied before a lost response whose retry was refused.
        return run
    if got.run_id == run.run_id:
        store.add_events(run.run_id, [event])
    return got


def _packed(groups: list[list[TransactWriteItemTypeDef]]) -> list[int]:
    """How many groups go in each transaction, within the action and size limits."""
    sizes: list[int] = []
    actions = size = 0
    for group in groups:
        group_size = sum(items.item_size(_item_of(action)) for action in group)
        over = actions + len(group) > writes.MAX_TRANSACTION_ACTIONS
        if sizes and sizes[-1] and (over or size + group_size > writes.MAX_TRANSACTION_BYTES):
            sizes.append(0)
            actions = size = 0
        if not sizes:
            sizes.append(0)
        sizes[-1] += 1
        actions += len(group)
        size += group_size
    return sizes


def _item_of(action: TransactWriteItemTypeDef) -> Item:
    body: Any = action.get("Put") or {}
    return body.get("Item") or {}


def create_with_events(
    client: DynamoDBClient, run: RunRecord, actions: list[TransactWriteItemTypeDef], token: str
) -> None:
    """Put a run's META (``actions[0]``, stamped with ``token``) and its events in one transaction.

    Raises:
        RunExistsError: Another create already holds the run id.
    """
    for attempt in range(writes.CONFLICT_ATTEMPTS):
        try:
            client.transact_write_items(
                TransactItems=actions, ClientRequestToken=writes.write_token(token, attempt)
            )
        except ClientError as exc:
            reasons = writes.cancellation_reasons(exc)
            if writes.applied(reasons, token):  # our own create, retried by botocore
                return
            if writes.failed_condition(reasons, 0):
                raise RunExistsError(run.run_id) from None
            if writes.conflicted(reasons) and attempt + 1 < writes.CONFLICT_ATTEMPTS:
                continue
            raise
        return
