"""A replay's copied journal, on DynamoDB: BatchWriteItem, 25 entries per request (a mixin).

The entries are written before their run exists, so nothing reads a partial
journal and no fence is needed. Values are stored as any entry's are: a large
result goes to its content-addressed blob, which the original run's entry
already names, so the blob is reused (its age refreshed), never copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.batches import write_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from durable_lambda.engine.journal import JournalEntry
    from durable_lambda.values import ValueStore


class JournalCopies:
    """What :class:`~.runs.DynamoDBRunStore` does to write a replay's journal (a mixin)."""

    client: DynamoDBClient
    table: str
    values: ValueStore

    def write_journal(self, run_id: str, entries: Sequence[JournalEntry]) -> None:
        """Write the journal of a run not created yet: one BatchWriteItem per 25 entries."""
        puts = []
        for entry in entries:
            result, error = self.values.store_entry(entry)
            puts.append(items.entry_item(run_id, entry, result, error))
        writes: Any = [{"PutRequest": {"Item": item}} for item in puts]
        write_items(self.client, self.table, writes, "journal entries")
