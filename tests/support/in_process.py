"""Services in this process on a moto server: a worker, admission, a scheduler and a client
sharing one ``SkipClock``, fed resume messages from the real (moto) SQS queue by the test."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from durable_lambda.adapters.aws import AwsPorts
from durable_lambda.admission import Admission
from durable_lambda.client import Client
from durable_lambda.messages import decode_message
from durable_lambda.scheduler import STRANDED_AFTER, Scheduler
from durable_lambda.settings import Settings
from durable_lambda.testing import SkipClock
from durable_lambda.worker import Invocation, Report, Worker


@dataclass
class InProcess:
    """The wiring of ``lambda_entry`` in this process, driven message by message."""

    ports: AwsPorts
    settings: Settings
    clock: SkipClock
    admission: Admission
    worker: Worker
    scheduler: Scheduler
    client: Client
    sqs: Any
    _request_ids: Iterator[int]

    def queue_depth(self) -> dict[str, int]:
        """The resume queue's visible, in-flight and delayed message counts."""
        names = ["Messages", "MessagesNotVisible", "MessagesDelayed"]
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.resume_queue_url,
            AttributeNames=[f"ApproximateNumberOf{name}" for name in names],
        )["Attributes"]
        return {name: int(attributes[f"ApproximateNumberOf{name}"]) for name in names}

    def receive(self, wait_seconds: int = 1) -> list[dict[str, Any]]:
        """The visible resume messages (up to 10), now invisible for 30 s."""
        response = self.sqs.receive_message(
            QueueUrl=self.settings.resume_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=30,
        )
        return response.get("Messages", [])

    def delete(self, message: dict[str, Any]) -> None:
        """Delete a received message (the invocation that got it is done)."""
        self.sqs.delete_message(
            QueueUrl=self.settings.resume_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    def invoke(self, body: str, timeout: float = 30.0) -> Report:
        """One invocation of the worker for the message ``body``, with ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        invocation = Invocation(
            request_id=f"in-process-{next(self._request_ids)}",
            remaining=lambda: deadline - time.monotonic(),
            timeout=timeout,
        )
        return self.worker.handle(decode_message(body), invocation)

    def deliver(self, wait_seconds: int = 0) -> list[Report]:
        """Receive the visible resume messages and hand each to the worker, as one invocation."""
        reports = []
        for message in self.receive(wait_seconds):
            reports.append(self.invoke(message["Body"]))
            self.delete(message)
        return reports

    def recover(self, rounds: int = 4) -> None:
        """A minute past the stranded-run horizon: the scheduler ticks, the worker takes what comes.

        By then every lease taken before has expired too (30 s invocations plus the grace).
        """
        self.clock.advance((STRANDED_AFTER + dt.timedelta(minutes=1)).total_seconds())
        for _ in range(rounds):
            self.scheduler.tick()
            self.deliver()
