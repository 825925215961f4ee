"""Probes of a running stack: wait for runs, read worker reports, drive an in-process worker."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from durable_lambda.adapters.aws import AwsPorts
from durable_lambda.client import Client
from durable_lambda.engine.state import RunStatus
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.messages import decode_message
from durable_lambda.records import RunRecord
from durable_lambda.scheduler import Scheduler
from durable_lambda.settings import Settings
from durable_lambda.testing import SkipClock
from durable_lambda.worker import Invocation, Report, Worker


def wait_all(
    stack: EmulatedStack, run_ids: list[str], timeout: float, stranded_after: float | None = None
) -> list[RunRecord]:
    """Every run once terminal.

    Fails early, naming the run, when one has stayed SUSPENDED for ``stranded_after``
    seconds past its wake time: by then its resume message is lost. On a timeout the
    worker log's tail says what happened.
    """
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending:
        now = dt.datetime.now(dt.UTC)
        for run_id in list(pending):
            run = stack.client.get_run(run_id)
            if run.status.is_terminal:
                pending.remove(run_id)
            elif stranded_after is not None and run.status is RunStatus.SUSPENDED:
                due = max(run.wake_at or run.updated_at, run.updated_at)
                if (now - due).total_seconds() > stranded_after:
                    events = [
                        f"{event.at:%H:%M:%S.%f} {event.kind.value} {event.detail}"
                        for event in stack.client.store.list_events(run_id)[-3:]
                    ]
                    raise AssertionError(
                        f"run {run_id} is stranded: SUSPENDED at epoch {run.epoch} since "
                        f"{run.updated_at}, {stranded_after:g} s past its wake time: its "
                        f"resume message is lost and nothing sent it again; last events: {events}"
                    )
        if pending and time.monotonic() >= deadline:
            log = stack.log_dir / "worker.log"
            tail = log.read_text()[-3000:] if log.exists() else "(no worker log)"
            statuses = {run_id: stack.client.get_run(run_id).status.value for run_id in pending}
            raise AssertionError(
                f"runs not finished after {timeout:g} s: {statuses}\n"
                f"--- worker.log tail ---\n{tail}"
            )
        if pending:
            time.sleep(0.2)
    return [stack.client.get_run(run_id) for run_id in run_ids]


def worker_reports(stack: EmulatedStack) -> list[dict[str, Any]]:
    """The worker's "resume message processed" log records (JSON lines of worker.log)."""
    reports = []
    for line in (stack.log_dir / "worker.log").read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message") == "resume message processed":
            reports.append(record)
    return reports


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
