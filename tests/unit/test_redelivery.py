"""A store or queue outage costs a resume message time, never a trip to the DLQ.

SQS dead-letters a message on the receive after ``maxReceiveCount`` (5 in the
template). These tests replay that rule against the real worker handler, with
a worker that fails while an outage lasts, and sum the redelivery delays the
handler asked SQS for (``ChangeMessageVisibility``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from durable_lambda import lambda_entry
from durable_lambda.engine.records import ResumeMessage
from durable_lambda.errors import RunNotFoundError
from durable_lambda.messages import encode_message
from durable_lambda.settings import Settings
from durable_lambda.worker import Report

MAX_RECEIVE_COUNT = 5  # template.yaml's MaxReceiveCount default


class StoreOutageError(Exception):
    """What botocore raises while DynamoDB throttles or is unreachable."""


@dataclass
class _Queue:
    delays: list[int] = field(default_factory=list)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:  # noqa: ARG002
        self.delays.append(seconds)


@dataclass
class _Ports:
    queue: _Queue


@dataclass
class _Worker:
    """Fails with ``error`` while the simulated clock is inside the outage."""

    error: Exception
    outage_until: float
    now: float = 0.0

    def handle(self, message: ResumeMessage, invocation: Any) -> Report:  # noqa: ARG002
        if self.now < self.outage_until:
            raise self.error
        return Report(message.run_id, "executed")


class _Context:
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def _record(receives: int) -> dict[str, Any]:
    return {
        "messageId": "m-1",
        "receiptHandle": f"handle-{receives}",
        "body": encode_message(ResumeMessage("run_1", 1)),
        "attributes": {"ApproximateReceiveCount": str(receives)},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:resume",
        "awsRegion": "us-east-1",
    }


def _deliver(monkeypatch: pytest.MonkeyPatch, error: Exception, outage: float) -> tuple[str, float]:
    """Deliver one message as SQS would; ``(fate, seconds from first receive to it)``."""
    queue, worker = _Queue(), _Worker(error, outage)
    app = lambda_entry._App(Settings(), _Ports(queue), worker, None)  # type: ignore[arg-type]
    monkeypatch.setattr(lambda_entry, "_app", app)
    for receives in range(1, MAX_RECEIVE_COUNT + 1):
        try:
            lambda_entry.worker_handler({"Records": [_record(receives)]}, _Context())
        except BatchProcessingError:
            worker.now += queue.delays[-1]  # invisible until then
            continue
        return "processed", worker.now
    return "dead-lettered", worker.now


def test_a_five_minute_store_outage_delays_a_message_without_dead_lettering_it(monkeypatch):
    fate, at = _deliver(monkeypatch, StoreOutageError("ThrottlingException"), outage=300)
    assert fate == "processed"
    assert at >= 300


def test_a_poison_message_still_reaches_the_dlq_within_two_minutes(monkeypatch):
    fate, at = _deliver(monkeypatch, RunNotFoundError("no run 'run_1'"), outage=float("inf"))
    assert fate == "dead-lettered"
    assert at < 120


def test_redelivery_backoff_doubles_and_is_capped():
    delays = [lambda_entry.redelivery_delay(StoreOutageError(), n) for n in range(1, 9)]
    assert delays == [30, 60, 120, 240, 480, 900, 900, 900]
