"""Wait token benchmarks: AWS requests per token wait, and how fast a completion wakes the run.

- ``requests_per_token_wait``: every AWS request from ``create_token`` to the
  first step after the run resumed on the token's completion, the completer's
  included (create, the suspending checkpoint, the completion's write and
  nudge, the lease, the journal, which brings the resolved token along).
  Counted with
  ``RequestCounter`` on an in-process worker and an in-process completer,
  against a moto server; the SQS receive and delete of Lambda's event source
  mapping are not the function's and are not counted (see ``chaining.py``).
  Printed beside it: the theoretical minimum.
- ``token_completion_to_resume_ms``: median (p90 beside it), over 10 tokens
  on the emulated stack (moto server, subprocess workers, SQS pollers), of
  (first step after ``for_token`` started - ``tokens.complete`` returned).

Run: ``make bench`` or ``.venv/bin/python benchmarks/tokens.py``.
Prints one JSON object per line: {"figure": NAME, "value": NUMBER, "unit": UNIT}.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, emit_median, handle_message, progress

from durable_lambda import step, task, wait
from durable_lambda.task import TaskRegistry

HERE = Path(__file__).resolve().parent

WAITS = 5
TOKENS = 10
#: Create, the suspending checkpoint, the completion's conditional write, its
#: nudge, the woken run's lease and journal read. The completion's data has to
#: reach the run, and it rides on the journal's Query: the token is kept in
#: the run's partition, right after its journal (no read of its own). Fewer
#: would need the create to ride on the checkpoint, leaving no token for a
#: completer handed its id before the run suspended.
THEORETICAL_MINIMUM = 6

IN_PROCESS = TaskRegistry()
#: Run as a script, this file is imported again as ``tokens`` by the emulated
#: stack (and by its workers): only that copy registers in the default registry.
_EMULATED = TaskRegistry() if __name__ == "__main__" else None

_marks: list[tuple[str, Counter[str]]] = []
_counters: list[Any] = []


def _snapshot() -> Counter[str]:
    total: Counter[str] = Counter()
    for counter in _counters:
        total.update(counter.snapshot())
    return total


@step
def resumed(index: int) -> int:
    _marks.append(("resumed", _snapshot()))
    return index


@task(id="bench-token-waits", registry=IN_PROCESS)
async def token_waits(payload: int) -> int:
    for index in range(payload):
        token = await wait.create_token(timeout=3600, name="bench")
        await wait.for_token(token)
        await resumed(index)
    return payload


@step
def started_at() -> float:
    return time.time()


@task(id="bench-token-resume", registry=_EMULATED)
async def token_resume(payload: int) -> list[float]:
    starts = []
    for _ in range(payload):
        token = await wait.create_token(timeout=600, name="bench")
        await wait.for_token(token)
        starts.append(await started_at())
    return starts


def token_wait_requests() -> list[Counter[str]]:
    """Per token wait: the AWS requests of the worker and the completer."""
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.client import Client  # noqa: PLC0415
    from durable_lambda.local.endpoint_session import EndpointSession  # noqa: PLC0415
    from durable_lambda.local.moto_server import MotoServer  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415
    from durable_lambda.services import build_services  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415
    from durable_lambda.testing.aws_counter import RequestCounter  # noqa: PLC0415

    with MotoServer() as server:
        session = EndpointSession(server.endpoint_url, server.region)
        settings = ensure_resources(
            Settings(table_name="bench-tokens", bucket_name="bench-tokens"), session
        )
        ports = aws_ports(settings, session)
        worker = build_services(ports, IN_PROCESS, settings).worker
        # Each party has a session of its own: clients of one session share
        # their event hooks, so one party's counter would count another's requests.
        completer_ports = aws_ports(settings, EndpointSession(server.endpoint_url, server.region))
        completer = build_services(completer_ports, IN_PROCESS, settings).client
        _counters.extend(
            [
                RequestCounter().attach(ports.store.client, ports.queue.client),
                RequestCounter().attach(completer_ports.store.client, completer_ports.queue.client),
            ]
        )
        assert ports.tokens is not None
        create = ports.tokens.create

        def marked_create(*args: Any, **kwargs: Any) -> Any:
            _marks.append(("create", _snapshot()))
            return create(*args, **kwargs)

        ports.tokens.create = marked_create  # type: ignore[method-assign]
        # The driver triggers, polls and receives through clients of its own: not counted.
        driver = EndpointSession(server.endpoint_url, server.region)
        outside = aws_ports(settings, driver)
        client = Client(store=outside.store, queue=outside.queue, clock=outside.clock)
        sqs = driver.client("sqs")
        handle = client.trigger(token_waits, WAITS)
        completed = 0
        while not client.get_run(handle.run_id).status.is_terminal:
            response = sqs.receive_message(
                QueueUrl=settings.resume_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in response.get("Messages", []):
                handle_message(worker, message["Body"])
                sqs.delete_message(
                    QueueUrl=settings.resume_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            pending = _pending_token(outside, handle.run_id)
            if pending is not None:
                completer.complete_token(pending, {"n": completed})
                completed += 1
        assert client.get_run(handle.run_id).status.value == "COMPLETED"
    per_wait = []
    for (label, at_create), (next_label, at_resume) in itertools.pairwise(_marks):
        if label == "create" and next_label == "resumed":
            per_wait.append(at_resume - at_create)
    assert len(per_wait) == WAITS, _marks
    return per_wait


def _pending_token(ports: Any, run_id: str) -> str | None:
    """The run's pending token, once its suspension is written (the driver's view)."""
    from durable_lambda.engine.journal import EntryKind  # noqa: PLC0415
    from durable_lambda.engine.tokens import TokenStatus  # noqa: PLC0415

    run = ports.store.get_run(run_id)
    if run is None or run.status.value != "SUSPENDED":
        return None
    for entry in ports.store.load_journal(run_id):
        if entry.kind is EntryKind.TOKEN:
            token = ports.tokens.get(json.loads(entry.result or "{}")["id"])
            if token is not None and token.status is TokenStatus.PENDING:
                return str(token.token_id)
    return None


def completion_to_resume_ms() -> list[float]:
    """(first step after for_token - tokens.complete returned), per token, on the emulated stack."""
    from durable_lambda.engine.journal import EntryKind  # noqa: PLC0415
    from durable_lambda.local import EmulatedStack  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415

    stack = EmulatedStack(Settings(), task_modules=["tokens"], pythonpath=[str(HERE)], timeout=10.0)
    returned: list[float] = []
    with stack:
        handle = stack.trigger("bench-token-resume", TOKENS)
        ports = stack.client
        deadline = time.monotonic() + 60 + 10 * TOKENS
        while len(returned) < TOKENS and time.monotonic() < deadline:
            token_id = _pending_token(_ClientPorts(ports), handle.run_id)
            if token_id is None:
                time.sleep(0.05)
                continue
            ports.complete_token(token_id, None)
            returned.append(time.time())
        run = stack.wait_for(handle.run_id, timeout=60)
        assert run.status.value == "COMPLETED", run
        journal = stack.client.store.load_journal(handle.run_id)
    starts = [
        float(entry.result or "0")
        for entry in journal
        if entry.kind is EntryKind.STEP and entry.name == "started_at"
    ]
    assert len(starts) == len(returned) == TOKENS, (starts, returned)
    return [(start - done) * 1000 for start, done in zip(starts, returned, strict=True)]


class _ClientPorts:
    """A client seen as the store and token store ``_pending_token`` reads."""

    def __init__(self, client: Any) -> None:
        self.store = client.store
        self.tokens = client.tokens


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    progress(f"{WAITS} token waits through an in-process worker and completer on a moto server")
    per_wait = token_wait_requests()
    counts = [sum(wait_.values()) for wait_ in per_wait]
    emit(
        "requests_per_token_wait",
        statistics.median(counts),
        "requests",
        target_max=6,
        theoretical_minimum=THEORETICAL_MINIMUM,
        max=max(counts),
        waits=len(counts),
        operations=dict(sorted(per_wait[0].items())),
    )
    progress(f"{TOKENS} token completions on the emulated stack (moto server, subprocess workers)")
    lags = completion_to_resume_ms()
    emit_median(
        "token_completion_to_resume_ms",
        lags,
        "ms",
        target_max=500,
        p90=round(statistics.quantiles(lags, n=10)[-1], 1),
        samples=len(lags),
    )


if __name__ == "__main__":
    main()
