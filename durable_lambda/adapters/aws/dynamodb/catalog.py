"""The task catalog on DynamoDB: one ``TASK#<id> / TASK`` item per task.

Each item also carries ``gsi1pk=CATALOG``, ``gsi1sk=<task id>`` so the whole
catalog is one Query of the ``by_task_status`` index (runs there are under
``TASK#<id>`` partitions, never ``CATALOG``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.adapters.aws.dynamodb.batches import (
    BATCH_GET_KEYS,
    UNPROCESSED_ROUNDS,
    UnprocessedKeysError,
)
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.catalog import TaskDescription, schema_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

TASK_SK = "TASK"
CATALOG_PK = "CATALOG"


def task_key(task_id: str) -> Item:
    """The key of a task's catalog item."""
    return items.key(f"TASK#{task_id}", TASK_SK)


class DynamoDBCatalogStore:
    """:class:`~durable_lambda.catalog.CatalogStore` on the run table.

    Args:
        client: A low-level boto3 DynamoDB client.
        table_name: The table.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        """Wire the store to its table."""
        self.client = client
        self.table = table_name

    def versions(self, task_ids: Sequence[str]) -> dict[str, str]:
        """Stored versions: one consistent BatchGetItem per 100 tasks, versions projected."""
        unique = list(dict.fromkeys(task_ids))
        found: dict[str, str] = {}
        for start in range(0, len(unique), BATCH_GET_KEYS):
            keys: list[Any] = [task_key(t) for t in unique[start : start + BATCH_GET_KEYS]]
            for _ in range(UNPROCESSED_ROUNDS):
                response: dict[str, Any] = dict(
                    self.client.batch_get_item(
                        RequestItems={
                            self.table: {
                                "Keys": keys,
                                "ConsistentRead": True,
                                "ProjectionExpression": "task_id, version",
                            }
                        }
                    )
                )
                for item in response.get("Responses", {}).get(self.table, []):
                    found[items.req_s(item, "task_id")] = items.req_s(item, "version")
                keys = list(response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", []))
                if not keys:
                    break
            else:
                raise UnprocessedKeysError(
                    f"{len(keys)} catalog items still unprocessed after {UNPROCESSED_ROUNDS} rounds"
                )
        return found

    def put(self, description: TaskDescription) -> bool:
        """One PutItem, conditioned on another version (or none) being stored."""
        item: Item = {
            **task_key(description.task_id),
            "type": items.s("task"),
            "task_id": items.s(description.task_id),
            "version": items.s(description.version),
            "description": items.s(schema_text(description)),
            "gsi1pk": items.s(CATALOG_PK),
            "gsi1sk": items.s(description.task_id),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #version <> :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": items.s(description.version)},
            )
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            return False  # this version is there: another cold start, or our retried put
        return True

    def get(self, task_id: str) -> TaskDescription | None:
        """The task's description (one consistent GetItem), or ``None``."""
        response = self.client.get_item(
            TableName=self.table, Key=task_key(task_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _parse(item) if item is not None else None

    def list(self) -> list[TaskDescription]:
        """Every catalogued task by id: one Query of the task index per 1 MB page."""
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "IndexName": items.TASK_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": items.s(CATALOG_PK)},
        }
        return [_parse(item) for item in query_items(self.client, request)]


def _parse(item: Item) -> TaskDescription:
    return TaskDescription.model_validate_json(items.req_s(item, "description"))
