"""Probes of a running stack: wait for runs, read worker reports, drive an in-process worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from durable_lambda.adapters.aws import AwsPorts
from durable_lambda.client import Client
from durable_lambda.messages import decode_message
from durable_lambda.scheduler import Scheduler
from durable_lambda.settings import Settings
from durable_lambda.testing import SkipClock
from durable_lambda.worker import Invocation, Report, Worker


@dataclass
class InProcess:
    """A worker, a scheduler and a client on DynamoDB/SQS (moto), sharing a ``SkipClock``."""

    ports: AwsPorts
    settings: Settings
    clock: SkipClock
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

    def deliver(self, wait_seconds: int = 0) -> list[Report]:
        """Receive the visible resume messages and hand each to the worker, as one invocation."""
        response = self.sqs.receive_message(
            QueueUrl=self.settings.resume_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=30,
        )
        reports = []
        for message in response.get("Messages", []):
            reports.append(self.invoke(message["Body"]))
            self.sqs.delete_message(
                QueueUrl=self.settings.resume_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return reports

    def invoke(self, body: str, timeout: float = 30.0) -> Report:
        """One invocation of the worker for the message ``body``, with ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        invocation = Invocation(
            request_id=f"in-process-{next(self._request_ids)}",
            remaining=lambda: deadline - time.monotonic(),
            timeout=timeout,
        )
        return self.worker.handle(decode_message(body), invocation)
