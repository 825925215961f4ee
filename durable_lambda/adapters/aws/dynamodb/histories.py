"""A run's history on DynamoDB: its journal and its wait tokens in one Query (a mixin).

A run's tokens sit in its partition under ``TOKEN#`` (see
:mod:`~durable_lambda.adapters.aws.dynamodb.tokens`), which sorts right after
the journal's ``STEP#``: one Query from ``STEP#`` on, paginated as the
journal's, reads both. A woken run thus finds the completion of the token it
waits on with its journal, with no read of the token of its own. A token's
data in the blob store is loaded only if the run looks at that token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.queries import query_items
from durable_lambda.adapters.aws.dynamodb.tokens import loaded_token
from durable_lambda.engine.history import History, LoadedTokens

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item
    from durable_lambda.engine.journal import JournalEntry
    from durable_lambda.engine.tokens import TokenInfo
    from durable_lambda.values import ValueStore


def loaded_entry(item: Item, values: ValueStore) -> JournalEntry:
    """The journal entry of ``item``, its large result and error loaded from their blobs."""
    entry, result, error = items.parse_entry(item)
    return dataclasses.replace(
        entry,
        result=values.load(result) if result is not None else None,
        error=values.load_error(error) if error is not None else None,
    )


class RunHistories:
    """What :class:`~.runs.DynamoDBRunStore` does to read a run's history (a mixin)."""

    client: DynamoDBClient
    table: str
    values: ValueStore

    def load_history(self, run_id: str) -> History:
        """The journal and the run's tokens: one Query per 1 MB page, as the journal alone."""
        query: QueryInputTypeDef = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk >= :from",
            "ExpressionAttributeValues": {
                ":pk": items.s(items.run_pk(run_id)),
                ":from": items.s(items.STEP_PREFIX),
            },
            "ConsistentRead": True,
        }
        entries: list[JournalEntry] = []
        tokens: dict[str, Callable[[], TokenInfo]] = {}
        for item in query_items(self.client, query):
            sort_key = items.req_s(item, "sk")
            if sort_key.startswith(items.STEP_PREFIX):
                entries.append(loaded_entry(item, self.values))
            elif sort_key.startswith(items.TOKEN_PREFIX):
                tokens[items.req_s(item, "token_id")] = partial(loaded_token, item, self.values)
        return History(entries, LoadedTokens(tokens))
