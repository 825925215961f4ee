"""Chaining benchmarks: what one wait costs in AWS requests, and how late a wait resumes.

- ``aws_requests_per_wait_cycle``: every AWS request the worker function makes
  from the checkpoint that suspends a run on a wait to the first step executed
  after it (checkpoint, resume message, lease, journal; now and then a read of
  the queue's control state when admission's cache of it expires). Counted with
  ``RequestCounter`` on an in-process worker, wired as the worker function
  wires itself, against a moto server.
- ``esm_requests_per_wait_cycle``: the SQS requests Lambda's event source
  mapping makes for that message (receive, delete), which the function does not.
- ``resume_lag_ms``: median, over 10 waits of 1 s on the emulated stack (moto
  server, subprocess workers, SQS pollers), of (first step after the wait
  started - the wait's wake time).

Run: ``make bench`` or ``.venv/bin/python benchmarks/chaining.py``.
Prints one JSON object per line: {"figure": NAME, "value": NUMBER, "unit": UNIT}.
"""

from __future__ import annotations

import itertools
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

CYCLES = 10
WAITS = 10

#: Tasks the in-process worker runs (a registry of their own).
IN_PROCESS = TaskRegistry()
#: Run as a script, this file is imported again as ``chaining`` by the emulated
#: stack (and by its workers): only that copy registers in the default registry.
_EMULATED = TaskRegistry() if __name__ == "__main__" else None

#: (label, requests so far) at each checkpoint and each step start of the in-process run.
_marks: list[tuple[str, Counter[str]]] = []
_counter: Any = None


@step
def mark(index: int) -> int:
    _marks.append(("step", Counter(_counter.snapshot())))
    return index


@task(id="bench-wait-cycles", registry=IN_PROCESS)
async def wait_cycles(payload: int) -> int:
    for index in range(payload):
        await mark(index)
        await wait.for_(seconds=1)
    return await mark(payload)


@step
def started_at() -> float:
    return time.time()


@task(id="bench-resume-lag", registry=_EMULATED)
async def resume_lag(payload: int) -> list[float]:
    starts = []
    for _ in range(payload):
        await wait.for_(seconds=1)
        starts.append(await started_at())
    return starts


def wait_cycle_requests() -> tuple[list[Counter[str]], list[Counter[str]]]:
    """Per wait cycle: the function's AWS requests, and the event source mapping's."""
    global _counter  # noqa: PLW0603 - read by the step body
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
            Settings(table_name="bench-chain", bucket_name="bench-chain", short_wait_seconds=0),
            session,
        )
        ports = aws_ports(settings, session)
        # Wired as the worker function wires itself (lambda_entry): admission included.
        worker = build_services(ports, IN_PROCESS, settings).worker
        _counter = RequestCounter().attach(ports.store.client, ports.queue.client)
        checkpoint = ports.store.checkpoint

        def marked_checkpoint(*args: Any, **kwargs: Any) -> Any:
            _marks.append(("checkpoint", Counter(_counter.snapshot())))
            return checkpoint(*args, **kwargs)

        ports.store.checkpoint = marked_checkpoint  # type: ignore[method-assign]
        # The driver triggers and polls through clients of its own, which are not counted.
        outside = aws_ports(settings, session)
        client = Client(store=outside.store, queue=outside.queue, clock=outside.clock)
        esm_sqs = session.client("sqs")
        esm = RequestCounter().attach(esm_sqs)
        url = settings.resume_queue_url
        handle = client.trigger(wait_cycles, CYCLES)
        esm_per_cycle: list[Counter[str]] = []
        while not client.get_run(handle.run_id).status.is_terminal:
            before = Counter(esm.snapshot())
            messages: list[Any] = []
            empty = 0
            while not messages:
                response = esm_sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2
                )
                messages = response.get("Messages", [])
                empty += not messages
            for message in messages:
                handle_message(worker, message["Body"])
                esm_sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            # Long polls that came back empty are the mapping's idle cost, not this message's.
            esm_per_cycle.append(
                Counter(esm.snapshot()) - before - Counter({"sqs.ReceiveMessage": empty})
            )
        assert client.get_run(handle.run_id).status.value == "COMPLETED"
    function_per_cycle = [
        step_mark - checkpoint_mark
        for (label, checkpoint_mark), (next_label, step_mark) in itertools.pairwise(_marks)
        if label == "checkpoint" and next_label == "step"
    ]
    # The first delivery is the trigger's, not a wait's.
    return function_per_cycle, esm_per_cycle[1:]


def resume_lags_ms() -> list[float]:
    """(first step after the wait - wake time) for each wait of one run on the emulated stack."""
    from durable_lambda.engine.journal import EntryKind  # noqa: PLC0415
    from durable_lambda.local import EmulatedStack  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415

    stack = EmulatedStack(
        Settings(short_wait_seconds=0),
        task_modules=["chaining"],
        pythonpath=[str(HERE)],
        timeout=10.0,
    )
    with stack:
        handle = stack.trigger("bench-resume-lag", WAITS)
        run = stack.wait_for(handle.run_id, timeout=20 + 3 * WAITS)
        assert run.status.value == "COMPLETED", run
        journal = stack.client.store.load_journal(handle.run_id)
    lags = []
    for waited, resumed in itertools.pairwise(journal):
        if waited.kind is EntryKind.WAIT and resumed.kind is EntryKind.STEP:
            assert waited.wake_at is not None
            assert resumed.result is not None
            lags.append((float(resumed.result) - waited.wake_at.timestamp()) * 1000)
    assert len(lags) == WAITS, lags
    return lags


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    progress(f"{CYCLES} wait cycles through an in-process worker on a moto server")
    function, esm = wait_cycle_requests()
    per_cycle = [sum(cycle.values()) for cycle in function]
    emit(
        "aws_requests_per_wait_cycle",
        statistics.median(per_cycle),
        "requests",
        target_max=4,
        mean=round(statistics.mean(per_cycle), 2),
        max=max(per_cycle),
        cycles=len(per_cycle),
        operations=dict(sorted(function[0].items())),
    )
    esm_counts = [sum(cycle.values()) for cycle in esm]
    emit(
        "esm_requests_per_wait_cycle",
        statistics.median(esm_counts),
        "requests",
        max=max(esm_counts),
        operations=dict(sorted(esm[0].items())),
    )
    progress(f"{WAITS} waits of 1 s on the emulated stack (moto server, subprocess workers)")
    lags = resume_lags_ms()
    emit_median("resume_lag_ms", lags, "ms", target_max=1000, samples=len(lags))


if __name__ == "__main__":
    main()
