"""Reads of the run table's secondary indexes: listing runs, and finding runs to recover."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.engine.records import RunQuery, RunRecord
from durable_lambda.engine.state import RunStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item


def status_pk(status: RunStatus) -> str:
    """The status index's partition of ``status``."""
    return f"STATUS#{status.value}"


class RunIndexes:
    """Queries of the ``by_task_status``, ``by_status`` and ``by_due`` indexes.

    Args:
        client: The DynamoDB client.
        table: The table name.
        hydrate: Turns a projected META item into a full run (values loaded).
        get_run: Reads a run by id (for the keys-only ``by_due`` index).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        hydrate: Callable[[Item], RunRecord],
        get_run: Callable[[str], RunRecord | None],
    ) -> None:
        self.client = client
        self.table = table
        self.hydrate = hydrate
        self.get_run = get_run

    def expired_leases(self, now: dt.datetime, limit: int) -> list[RunRecord]:
        """RUNNING runs whose lease expired (the status index sorts them by lease expiry)."""
        pk = status_pk(RunStatus.RUNNING)
        found = self._until(items.STATUS_INDEX, ("gsi2pk", "gsi2sk"), pk, now, limit)
        # The index is eventually consistent: keep only what is still expired.
        expired = (
            run
            for run in map(self.hydrate, found)
            if run.status is RunStatus.RUNNING
            and (run.lease_expiry is None or run.lease_expiry <= now)
        )
        return list(itertools.islice(expired, limit))

    def stranded_runs(self, before: dt.datetime, limit: int) -> list[RunRecord]:
        """QUEUED or SUSPENDED runs due before ``before``: one Query per due-index shard."""
        found: list[RunRecord] = []
        for shard in range(items.DUE_SHARDS):
            pk = items.due_shard_pk(shard)
            for item in self._until(items.DUE_INDEX, ("gsi3pk", "gsi3sk"), pk, before, limit):
                # The index holds keys only: read the run itself (rare: a lost message).
                run = self.get_run(items.req_s(item, "pk").removeprefix("RUN#"))
                if run is not None:
                    found.append(run)
        # The index is eventually consistent: keep only what is still overdue.
        overdue = [r for r in found if (due := items.due_of(r)) is not None and due < before]
        return sorted(overdue, key=lambda r: items.due_of(r) or before)[:limit]

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs newest first, from the task index or the status index (every status merged).

        The created range and the page position are one key condition; status
        and tag are filter expressions; each index partition is read lazily
        until ``limit`` runs matched, and every filter is checked again on the
        items read (the index is eventually consistent).
        """
        if query.task_id is not None:
            parts = [(items.TASK_INDEX, ("gsi1pk", "gsi1sk"), f"TASK#{query.task_id}", True)]
        else:
            statuses = [query.status] if query.status is not None else list(RunStatus)
            # RUNNING runs are sorted by lease expiry in the index, so all of them are
            # read (they are bounded by the worker's concurrency) and sorted here.
            parts = [
                (items.STATUS_INDEX, ("gsi2pk", "gsi2sk"), status_pk(s), s is not RunStatus.RUNNING)
                for s in statuses
            ]
        found: dict[str, tuple[RunRecord, Item]] = {}
        for index, keys, pk, by_time in parts:
            request = self._listing(query, index, keys, pk, by_time=by_time)
            parsed = ((items.parse_run(item)[0], item) for item in self.query(request))
            matching = (pair for pair in parsed if query.matches(pair[0]))
            for run, item in itertools.islice(matching, query.limit) if by_time else matching:
                # A run that changed status between two partitions' reads is in
                # both: the later read wins, unless the earlier saw it finished.
                seen = found.get(run.run_id)
                if seen is None or not seen[0].status.is_terminal:
                    found[run.run_id] = (run, item)
        newest = sorted(
            found.values(), key=lambda pair: (pair[0].created_at, pair[0].run_id), reverse=True
        )
        return [self.hydrate(item) for _, item in newest[: query.limit]]

    def _listing(
        self, query: RunQuery, index: str, keys: tuple[str, str], pk: str, *, by_time: bool
    ) -> QueryInputTypeDef:
        """The Query of one index partition for ``query``, newest first."""
        pk_name, sk_name = keys
        request = self._partition(index, pk_name, pk)
        values: dict[str, Any] = {":pk": items.s(pk)}
        names: dict[str, str] = {}
        if by_time:
            high = [items.up_to(query.created_to)] if query.created_to is not None else []
            if query.before is not None:  # inclusive here: the boundary run is dropped by matches
                high.append(f"{items.iso(query.before[0])}#{query.before[1]}")
            low = items.iso(query.created_from) if query.created_from is not None else None
            if high and low is not None:
                request["KeyConditionExpression"] = (
                    f"{pk_name} = :pk AND {sk_name} BETWEEN :lo AND :hi"
                )
                values[":lo"], values[":hi"] = items.s(low), items.s(min(high))
            elif high:
                request["KeyConditionExpression"] = f"{pk_name} = :pk AND {sk_name} <= :hi"
                values[":hi"] = items.s(min(high))
            elif low is not None:
                request["KeyConditionExpression"] = f"{pk_name} = :pk AND {sk_name} >= :lo"
                values[":lo"] = items.s(low)
        filters = []
        if query.status is not None and index == items.TASK_INDEX:
            filters.append("#status = :status")
            names["#status"] = "status"
            values[":status"] = items.s(query.status.value)
        if query.tag is not None:
            filters.append("contains(#tags, :tag)")
            names["#tags"] = "tags"
            values[":tag"] = items.s(query.tag)
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
            request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        # Pages the size of a listing: a filtered listing reads on until it has enough.
        request["Limit"] = max(query.limit, 25)
        return request

    def query(self, query: QueryInputTypeDef) -> Iterator[Item]:
        """Every item of ``query``, page after page (lazily: stop early to read less)."""
        return query_items(self.client, query)

    def _partition(self, index: str, pk_name: str, pk_value: str) -> QueryInputTypeDef:
        return {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": f"{pk_name} = :pk",
            "ExpressionAttributeValues": {":pk": items.s(pk_value)},
            "ScanIndexForward": False,
        }

    def _until(
        self, index: str, keys: tuple[str, str], pk: str, until: dt.datetime, limit: int
    ) -> Iterator[Item]:
        """Items of one index partition whose sort key (time first) is before ``until``."""
        pk_name, sk_name = keys
        request = self._partition(index, pk_name, pk)
        request["KeyConditionExpression"] = f"{pk_name} = :pk AND {sk_name} < :until"
        request["ExpressionAttributeValues"] = {
            ":pk": items.s(pk),
            ":until": items.s(items.up_to(until)),
        }
        request["ScanIndexForward"] = True
        request["Limit"] = limit
        return itertools.islice(self.query(request), limit)
