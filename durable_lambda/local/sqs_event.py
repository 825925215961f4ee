"""SQS messages to a Lambda SQS event, and a batch response to the messages to delete. No I/O.

Shapes and rules follow Lambda's SQS event source mapping with
``ReportBatchItemFailures``: a batch is a complete success when the handler
returns nothing, an empty object, or an empty or null ``batchItemFailures``; it
is a complete failure when the response is not an object or names an item
that is empty or not in the batch.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import MessageSystemAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

#: Every system attribute (Lambda's records carry them all, FIFO ones included).
SYSTEM_ATTRIBUTES: Sequence[MessageSystemAttributeNameType] = ("All",)


def lambda_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records[]`` entry, as Lambda builds it from a received message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_event(messages: Sequence[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event a Lambda function receives for one batch."""
    return {"Records": [lambda_record(message, queue_arn, region) for message in messages]}


def records_to_delete(
    records: Sequence[Mapping[str, Any]], response: Any
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split a batch by the handler's response into (to delete, to leave for a retry).

    ``response`` is the value the handler returned (it ran without error).
    """
    failures = _failed_ids(response)
    if failures is None:
        return [], list(records)
    known = {record["messageId"] for record in records}
    if not failures <= known:
        return [], list(records)
    done = [record for record in records if record["messageId"] not in failures]
    failed = [record for record in records if record["messageId"] in failures]
    return done, failed


def _failed_ids(response: Any) -> set[str] | None:
    """The reported item ids; ``None`` when the response makes the whole batch fail."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    items = response.get("batchItemFailures")
    if not items:
        return set()
    if not isinstance(items, list):
        return None
    ids: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            return None
        ids.add(identifier)
    return ids


def _attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted
