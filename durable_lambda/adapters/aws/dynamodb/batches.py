"""Batched reads: many items by key in as few BatchGetItem requests as DynamoDB allows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.errors import RetryableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: DynamoDB's limit of keys per BatchGetItem request.
BATCH_GET_KEYS = 100
#: Rounds of a batch's unprocessed keys (DynamoDB's throttling answer) before giving up.
UNPROCESSED_ROUNDS = 10


class UnprocessedKeysError(RetryableError):
    """DynamoDB kept answering a batch read with unprocessed keys."""


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
