from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.sqs_poller import SqsPoller

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def sqs(moto):
    moto.reset()
    return EndpointSession(moto.endpoint_url, moto.region).client("sqs")


def _deliveries(directory: Path) -> list[dict]:
    path = directory / "deliveries.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


#: Liveness bound of every wait here: generous, so a busy 2-core machine (worker
#: processes starting slowly) is not a failure. What is asserted are recorded facts.
PATIENCE = 60.0


def _wait_until(condition, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_delayed_message_is_delivered_no_earlier_than_its_delay(sqs, make_pool, tmp_path):
    url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
    poller = SqsPoller(make_pool("sqs_recorder"), sqs, url)
    poller.start()
    try:
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody="{}", DelaySeconds=2)
        _wait_until(lambda: _deliveries(tmp_path))
    finally:
        poller.stop()

    (delivery,) = _deliveries(tmp_path)
    assert delivery["at"] - sent >= 2.0  # never early; how late depends on the machine's load
    record = delivery["record"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":delayed")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert poller.stats.deleted == 1
    assert _depth(sqs, url) == 0


def test_failed_items_stay_and_return_after_the_visibility_timeout(sqs, make_pool, tmp_path):
    url = sqs.create_queue(QueueName="partial", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 2, "fail_times": 1}))
    poller = SqsPoller(make_pool("sqs_recorder"), sqs, url, pollers=1)
    poller.start()
    try:
        _wait_until(lambda: len(_deliveries(tmp_path)) == 3)
        _wait_until(lambda: poller.stats.deleted == 2)
    finally:
        poller.stop()

    first, failing, retried = _deliveries(tmp_path)
    assert json.loads(first["record"]["body"]) == {"n": 1}
    assert failing["record"]["messageId"] == retried["record"]["messageId"]
    assert retried["record"]["attributes"]["ApproximateReceiveCount"] == "2"
    # SQS returned it (its receive count says so), not the poller: the handler's
    # clock says nothing about when SQS received it (a slow cold start eats into it).
    stats = poller.stats
    assert (stats.messages, stats.deleted, stats.failed) == (3, 2, 1)
    # One receive may return both first messages or one of them: two batches or three.
    assert stats.batches in (2, 3)
    assert _depth(sqs, url) == 0


def test_failed_invocation_deletes_nothing_and_sqs_redrives_to_the_dlq(sqs, make_pool):
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="failing",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    poller = SqsPoller(make_pool("fails"), sqs, url, pollers=1)
    poller.start()
    try:
        _wait_until(lambda: _depth(sqs, dlq) == 1)
    finally:
        poller.stop()

    stats = poller.stats
    assert (stats.messages, stats.deleted, stats.invocation_errors) == (2, 0, 2)
    assert _depth(sqs, url) == 0
