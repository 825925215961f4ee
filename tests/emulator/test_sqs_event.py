from __future__ import annotations

import pytest

from durable_lambda.local.sqs_event import lambda_event, records_to_delete

pytestmark = pytest.mark.emulator

ARN = "arn:aws:sqs:us-east-1:123456789012:q"


def _message(n: int) -> dict:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {"k": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        "MD5OfMessageAttributes": "abc",
    }


def test_event_has_lambda_record_shape():
    (record,) = lambda_event([_message(1)], ARN, "us-east-1")["Records"]

    assert record == {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {
            "k": {
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
                "binaryValue": "AAE=",
            }
        },
        "md5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "md5OfMessageAttributes": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }


RECORDS = lambda_event([_message(1), _message(2)], ARN, "us-east-1")["Records"]


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_empty_response_deletes_the_whole_batch(response):
    done, failed = records_to_delete(RECORDS, response)

    assert [r["messageId"] for r in done] == ["m1", "m2"]
    assert failed == []


def test_reported_items_are_kept():
    done, failed = records_to_delete(RECORDS, {"batchItemFailures": [{"itemIdentifier": "m2"}]})

    assert [r["messageId"] for r in done] == ["m1"]
    assert [r["messageId"] for r in failed] == ["m2"]


@pytest.mark.parametrize(
    "response",
    [
        "ok",
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": "m1"},
    ],
)
def test_invalid_response_fails_the_whole_batch(response):
    done, failed = records_to_delete(RECORDS, response)

    assert done == []
    assert len(failed) == 2
