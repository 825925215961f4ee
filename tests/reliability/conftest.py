"""Fixtures: emulated stacks running ``ledger_tasks``, and in-process workers on a moto server."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ledger_tasks import LEDGER_ENV

from durable_lambda.adapters.aws import AwsPorts, aws_ports, ensure_resources
from durable_lambda.client import Client
from durable_lambda.engine.state import RunStatus
from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.messages import decode_message
from durable_lambda.records import RunRecord
from durable_lambda.scheduler import Scheduler
from durable_lambda.services import Services
from durable_lambda.settings import Settings
from durable_lambda.task import registry
from durable_lambda.testing import SkipClock
from durable_lambda.worker import Invocation, Report, Worker

HERE = Path(__file__).parent


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The ledger file the step bodies append to."""
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def make_stack(tmp_path: Path, ledger: Path) -> Iterator[Callable[..., EmulatedStack]]:
    """``make_stack(settings, timeout=.., ...)``: a started stack running ``ledger_tasks``.

    Every stack is stopped at the end of the test, whatever happened. Each gets a
    table, bucket and queues of its own: moto servers started in one process share
    their state, so a name used by an earlier stack would bring its leftovers along.
    """
    stacks: list[EmulatedStack] = []

    def make(settings: Settings | None = None, **options: Any) -> EmulatedStack:
        options.setdefault("log_dir", tmp_path / f"stack-{len(stacks)}")
        name = f"dl-rel-{uuid.uuid4().hex[:8]}"
        stack = EmulatedStack(
            (settings or Settings()).with_(table_name=name, bucket_name=name),
            task_modules=["ledger_tasks"],
            pythonpath=[str(HERE)],
            env={LEDGER_ENV: str(ledger)},
            **options,
        )
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


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
                        f"{run.updated_at}, {stranded_after:g} s past its wake time, with no "
                        "resume message (the lost wake-up of test_a_worker_killed_between_"
                        f"checkpoint_and_resume_message_strands_no_run); last events: {events}"
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


# -- in-process worker and scheduler on a moto server ---------------------------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


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


@pytest.fixture
def in_process(moto_server: MotoServer, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """Fresh resources (a table and queues of their own) on the module's moto server."""
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    session = EndpointSession(moto_server.endpoint_url, moto_server.region)
    name = f"dl-rel-{uuid.uuid4().hex[:8]}"
    settings = ensure_resources(
        Settings(table_name=name, bucket_name=name, short_wait_seconds=0, function_timeout=30),
        session,
    )
    ports = aws_ports(settings, session)
    clock = SkipClock()
    services = Services.build(
        store=ports.store,
        flow=ports.flow,
        queue=ports.queue,
        clock=clock,
        registry=registry,
        settings=settings,
        dead_letters=ports.dead_letters,
    )
    return InProcess(
        ports,
        settings,
        clock,
        services.worker,
        services.scheduler,
        services.client,
        session.client("sqs"),
        itertools.count(),
    )
