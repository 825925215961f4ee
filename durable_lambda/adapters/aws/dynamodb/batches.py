"""Batched reads and writes: many items in as few BatchGetItem or BatchWriteItem requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.errors import RetryableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: DynamoDB's limit of keys per BatchGetItem request.
BATCH_GET_KEYS = 100
#: DynamoDB's limit of put or delete requests per BatchWriteItem.
BATCH_WRITE_ITEMS = 25
#: Rounds of a batch's unprocessed keys or items (DynamoDB's throttling answer) before giving up.
UNPROCESSED_ROUNDS = 10


class UnprocessedKeysError(RetryableError):
    """DynamoDB kept answering a batch read with unprocessed keys."""


class UnprocessedItemsError(RetryableError):
    """DynamoDB kept answering a batch write with unprocessed items."""


def write_items(
    client: DynamoDBClient, table: str, writes: Sequence[WriteRequestTypeDef], what: str
) -> int:
    """Apply ``writes`` (puts or deletes) in BatchWriteItem requests of at most 25.

    Returns:
        How many requests were made (one per 25, plus one per round of unprocessed items).

    Raises:
        UnprocessedItemsError: Items (``what``, for the message) still unprocessed
            after ``UNPROCESSED_ROUNDS`` rounds.
    """
    requests = 0
    for start in range(0, len(writes), BATCH_WRITE_ITEMS):
        batch = writes[start : start + BATCH_WRITE_ITEMS]
        pending: Any = {table: list(batch)}
        for _ in range(UNPROCESSED_ROUNDS):
            response = client.batch_write_item(RequestItems=pending)
            requests += 1
            pending = response.get("UnprocessedItems") or None
            if not pending:
                break
        else:
            left = len(pending.get(table, []))
            raise UnprocessedItemsError(
                f"{left} of {len(batch)} {what} still unprocessed after "
                f"{UNPROCESSED_ROUNDS} BatchWriteItem rounds"
            )
    return requests


def get_metas(client: DynamoDBClient, table: str, run_ids: Sequence[str]) -> dict[str, Item]:
    """The META items of ``run_ids`` by run id (missing runs absent): consistent reads.

    One BatchGetItem per 100 distinct runs, plus one per round of unprocessed keys.

    Raises:
        UnprocessedKeysError: Keys still unprocessed after ``UNPROCESSED_ROUNDS`` rounds.
    """
    unique = list(dict.fromkeys(run_ids))
    found: dict[str, Item] = {}
    for start in range(0, len(unique), BATCH_GET_KEYS):
        keys: list[Any] = [
            items.key(items.run_pk(run_id), items.META)
            for run_id in unique[start : start + BATCH_GET_KEYS]
        ]
        for _ in range(UNPROCESSED_ROUNDS):
            response: dict[str, Any] = dict(
                client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
            )
            for item in response.get("Responses", {}).get(table, []):
                found[items.req_s(item, "run_id")] = item
            keys = list(response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            if not keys:
                break
        else:
            raise UnprocessedKeysError(
                f"{len(keys)} of {len(unique)} runs still unprocessed after "
                f"{UNPROCESSED_ROUNDS} BatchGetItem rounds"
            )
    return found
