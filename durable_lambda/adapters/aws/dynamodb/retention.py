"""A finished run leaves the table whole: when TTL removes its META item, the rest follows.

Only a run's META item carries ``ttl`` (set when the run finishes, to
``finished_at + retention_days``): a running run's journal must never expire
under it, and rewriting every entry at the finish would cost a write each. So
DynamoDB's TTL deletes the META alone, and the table's stream (keys only)
carries that deletion to the reaper function, which deletes the rest of the
run's partition: journal entries and timeline events. Without it they would
stay forever, paid for and unreachable.

Large values in S3 are not touched here: blobs are shared by content between
runs (a replay reuses its original's), and the bucket's lifecycle rule
expires them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.batches import write_items
from durable_lambda.errors import DurableLambdaError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

#: Who deletes an item whose TTL passed, as a stream record names it.
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
#: The event source mapping's filter: TTL's removals of META items only, so the
#: function is not even invoked for the table's other writes.
STREAM_FILTER: dict[str, Any] = {
    "eventName": ["REMOVE"],
    "userIdentity": {"type": ["Service"], "principalId": [TTL_PRINCIPAL]},
    "dynamodb": {"Keys": {"sk": {"S": [items.META]}}},
}


class RunStillPresentError(DurableLambdaError):
    """A run asked to be reaped still exists."""


def expired_run(record: Mapping[str, Any]) -> str | None:
    """The run id of a stream record that is TTL's removal of a run's META item, else ``None``.

    Checked here as well as in the mapping's filter: a person deleting a META
    by hand, or any other write, is not an expiry.
    """
    identity = record.get("userIdentity") or {}
    if record.get("eventName") != "REMOVE" or identity.get("principalId") != TTL_PRINCIPAL:
        return None
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    pk = (keys.get("pk") or {}).get("S", "")
    sk = (keys.get("sk") or {}).get("S", "")
    if sk != items.META or not pk.startswith("RUN#"):
        return None
    return str(pk).removeprefix("RUN#")


class PartitionReaper:
    """Deletes what is left of an expired run's partition.

    Args:
        client: The DynamoDB client.
        table: The run table.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def reap(self, run_id: str) -> int:
        """Delete every item left under ``run_id``'s partition key; how many were deleted.

        Idempotent: a redelivered stream record finds nothing left to delete.
        A META still present (the record was not an expiry after all) stops
        it with nothing deleted: one consistent read first.

        Raises:
            RunStillPresentError: The run's META item exists.
            UnprocessedItemsError: DynamoDB kept refusing some deletes (retry the record).
        """
        meta = self.client.get_item(
            TableName=self.table,
            Key=cast("Any", items.key(items.run_pk(run_id), items.META)),
            ConsistentRead=True,
        )
        if "Item" in meta:
            raise RunStillPresentError(f"run {run_id} still has its META item: not expired")
        deleted = 0
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": items.s(items.run_pk(run_id))},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        for page in pages:
            deletes = cast(
                "list[WriteRequestTypeDef]",
                [{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in page["Items"]],
            )
            write_items(self.client, self.table, deletes, f"items of run {run_id}")
            deleted += len(deletes)
        return deleted
