"""Reads of the run table's secondary indexes: listing runs, and finding runs to recover."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from durable_lambda.adapters.aws.dynamodb import layout as items
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
        """Runs newest first, from the task index or the status index."""
        if query.task_id is not None:
            request = self._partition(items.TASK_INDEX, "gsi1pk", f"TASK#{query.task_id}")
            if query.status is not None:
                request["FilterExpression"] = "#status = :status"
                request["ExpressionAttributeNames"] = {"#status": "status"}
                request["ExpressionAttributeValues"] = {
                    ":pk": items.s(f"TASK#{query.task_id}"),
                    ":status": items.s(query.status.value),
                }
            found = list(itertools.islice(self.query(request), query.limit))
            return [self.hydrate(item) for item in found]
        statuses = [query.status] if query.status is not None else list(RunStatus)
        newest: list[Item] = []
        for status in statuses:
            pages = self.query(self._partition(items.STATUS_INDEX, "gsi2pk", status_pk(status)))
            # RUNNING runs are sorted by lease expiry in the index, so all of them are
            # read (they are bounded by the worker's concurrency) and sorted here.
            newest += pages if status is RunStatus.RUNNING else itertools.islice(pages, query.limit)
        newest.sort(key=lambda item: items.get_s(item, "gsi1sk") or "", reverse=True)
        return [self.hydrate(item) for item in newest[: query.limit]]

    def query(self, query: QueryInputTypeDef) -> Iterator[Item]:
        """Every item of ``query``, page after page (lazily: stop early to read less)."""
        request = dict(query)
        while True:
            response = self.client.query(**cast("QueryInputTypeDef", request))
            yield from response["Items"]
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

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
