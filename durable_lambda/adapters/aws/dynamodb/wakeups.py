"""What wakes a run, on DynamoDB: the timer index and the count of a parent's children (a mixin).

Timers are spread over ``timer_shards`` partitions by run and sorted by wake
time, so ``due_timers`` is one ``Query`` per shard whatever the scheduler's
downtime: there is no time bucket to skip and no cursor that could lose a timer.
A child's end is counted on its parent in one conditional update.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.engine.records import Timer
from durable_lambda.engine.transitions import child_ended

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.indexes import RunIndexes
    from durable_lambda.adapters.aws.dynamodb.layout import Item
    from durable_lambda.engine.records import RunRecord


class Wakeups:
    """What :class:`~.runs.DynamoDBRunStore` does for wake-ups (a mixin)."""

    client: DynamoDBClient
    table: str
    timer_shards: int
    indexes: RunIndexes

    def add_timer(self, timer: Timer) -> None:
        """Index a wake-up."""
        self.client.put_item(TableName=self.table, Item=items.timer_item(timer, self.timer_shards))

    def due_timers(self, until: dt.datetime, limit: int = 100) -> list[Timer]:
        """Timers due by ``until``, earliest first: one Query per shard."""
        due: list[Timer] = []
        for shard in range(self.timer_shards):
            query = cast("QueryInputTypeDef", items.timer_query(self.table, shard, until, limit))
            due += [
                items.parse_timer(item)
                for item in itertools.islice(query_items(self.client, query), limit)
            ]
        return sorted(due, key=lambda t: (t.wake_at, t.run_id, t.epoch))[:limit]

    def delete_timer(self, timer: Timer) -> None:
        """Remove a fired timer (idempotent)."""
        self.client.delete_item(TableName=self.table, Key=items.timer_key(timer, self.timer_shards))

    def note_child_end(self, run_id: str, child_id: str) -> bool:
        """Count ``child_id``'s end on its parent in one conditional update (see the port)."""
        try:
            response = self.client.update_item(
                **writes.child_end_request(self.table, run_id, child_id)
            )
            item = cast("Item | None", response["Attributes"])
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            item = cast("Item | None", cast("dict[str, Any]", exc.response).get("Item"))
        if item is None:
            return False  # no such run
        run, _ = items.parse_run(item)
        return child_ended(run, child_id)[1]

    def expired_leases(self, now: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """RUNNING runs whose lease expired: one Query of the status index, by lease expiry."""
        return self.indexes.expired_leases(now, limit)

    def stranded_runs(self, before: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """QUEUED or SUSPENDED runs due before ``before``: one Query per due-index shard."""
        return self.indexes.stranded_runs(before, limit)
