"""What a run costs: USD per million runs of a 10-step task with one 1-hour wait.

The AWS requests are counted, not estimated: one run goes through the API's
trigger, the worker (wired as the worker function wires itself) and the
scheduler (which fires the 1-hour wait's timer: SQS delays stop at 15 minutes)
against a moto server, on a clock that skips the hour. Prices are AWS list
prices in us-east-1 (see ``PRICES``, with the date they were read); the
comparison counts what Step Functions Standard and Lambda durable functions
bill for the same workflow (one Lambda function per step for Step Functions).

Figures:

- ``requests_per_run``: every AWS request the run costs (API trigger, worker,
  the timer the scheduler fires, and the event source mapping's receive and
  delete per message); the scheduler's per-tick queries are a fixed cost per
  minute, not per run, and are measured apart (``scheduler_requests_per_tick``).
- ``usd_per_million_runs``: those requests and invocations at list prices,
  plus Lambda duration for the orchestration, at ``ASSUMED_MS_PER_REQUEST`` of
  billed time per AWS request at 512 MB arm64. The steps' own work costs the
  same everywhere and is left out of every column.
- ``step_functions_usd_per_million_runs`` and ``durable_functions_usd_per_million_runs``:
  the same workflow on those services (their billing units, listed in the output).

Run: ``.venv/bin/python benchmarks/cost.py``. Prints one JSON object per line.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, handle_message, progress

from durable_lambda import step, task, wait
from durable_lambda.task import TaskRegistry

STEPS = 10
REGISTRY = TaskRegistry()

#: us-east-1 list prices in USD, read from the AWS pricing pages on 2026-11-30.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "step_functions_transition": 0.025 / 1e3,  # Standard workflows
    "durable_operation": 8.00 / 1e6,  # Lambda durable functions
}
PRICES_READ = "2026-11-30"
#: Billed Lambda time per AWS request the orchestration makes (in-region DynamoDB/SQS latency).
ASSUMED_MS_PER_REQUEST = 10.0
MEMORY_GB = 0.5


@step
def work(index: int) -> int:
    return index


@task(id="bench-cost", registry=REGISTRY)
async def ten_steps(payload: int) -> int:
    total = 0
    for index in range(STEPS):
        total += await work(index)
        if index == STEPS // 2 - 1:
            await wait.for_(hours=1)
    return total + payload


class _Units:
    """DynamoDB write and read units of the requests seen (items of at most 1 KB)."""

    def __init__(self) -> None:
        self.writes = 0
        self.reads = 0

    def on_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "TransactWriteItems":
            self.writes += 2 * len(params["TransactItems"])  # transactions bill twice
        elif name == "BatchWriteItem":
            self.writes += sum(len(items) for items in params["RequestItems"].values())
        elif name in {"PutItem", "UpdateItem", "DeleteItem"}:
            self.writes += 1
        elif name in {"GetItem", "Query"}:
            self.reads += 1
        elif name == "TransactGetItems":
            self.reads += 2 * len(params["TransactItems"])
        elif name == "BatchGetItem":
            self.reads += sum(len(keys["Keys"]) for keys in params["RequestItems"].values())


class _Tick:
    """One scheduler tick's requests and DynamoDB units."""

    def __init__(self, counter: Any, units: _Units) -> None:
        self.counter = counter
        self.units = units
        self.calls: Counter[str] = Counter()
        self.writes = self.reads = 0

    def run(self, scheduler: Any, minus: _Tick | None = None) -> None:
        """Tick; with ``minus``, take that (bare) tick's requests and units back out."""
        calls, writes, reads = Counter(self.counter.calls), self.units.writes, self.units.reads
        scheduler.tick()
        self.calls = Counter(self.counter.calls) - calls
        self.writes, self.reads = self.units.writes - writes, self.units.reads - reads
        if minus is not None:
            self.counter.calls = calls + (self.calls - minus.calls)
            self.units.writes -= minus.writes
            self.units.reads -= minus.reads


def count_one_run() -> tuple[Counter[str], _Units, int, int, Counter[str]]:
    """One run's requests; its DynamoDB units; worker invocations; ESM requests; a bare tick's."""
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.local.endpoint_session import EndpointSession  # noqa: PLC0415
    from durable_lambda.local.moto_server import MotoServer  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415
    from durable_lambda.services import build_services  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415
    from durable_lambda.testing import SkipClock  # noqa: PLC0415
    from durable_lambda.testing.aws_counter import RequestCounter  # noqa: PLC0415

    with MotoServer() as server:
        session = EndpointSession(server.endpoint_url, server.region)
        settings = ensure_resources(
            Settings(table_name="bench-cost", bucket_name="bench-cost", short_wait_seconds=0),
            session,
        )
        clock = SkipClock()
        ports = dataclasses.replace(aws_ports(settings, session), clock=clock)
        services = build_services(ports, REGISTRY, settings)
        counter = RequestCounter().attach(ports.store.client, ports.queue.client)
        units = _Units()
        ports.store.client.meta.events.register("before-parameter-build.dynamodb", units.on_params)
        services.scheduler.tick()  # first sight: nothing to do
        bare = _Tick(counter, units)
        bare.run(services.scheduler)
        counter.reset()
        units.writes = units.reads = 0

        handle = services.client.trigger(ten_steps, 1)
        # The driver reads the run through a store of its own: those reads are not the run's.
        outside = aws_ports(settings, session).store
        esm = session.client("sqs")
        invocations = esm_requests = 0
        while not outside.get_run(handle.run_id).status.is_terminal:  # type: ignore[union-attr]
            messages = esm.receive_message(
                QueueUrl=settings.resume_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                run = outside.get_run(handle.run_id)
                if run is not None and run.wake_at is not None:
                    clock.advance_to(run.wake_at)
                # The tick's fixed queries are every minute's cost, not this run's.
                _Tick(counter, units).run(services.scheduler, minus=bare)
                continue
            esm_requests += 1  # the receive
            for message in messages:
                report = handle_message(services.worker, message["Body"])
                invocations += report.action == "executed"
                esm.delete_message(
                    QueueUrl=settings.resume_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                esm_requests += 1
        calls = Counter(counter.calls)
        run = outside.get_run(handle.run_id)
        assert run is not None
        assert run.status.value == "COMPLETED", run
    return calls, units, invocations, esm_requests, bare.calls


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    progress(f"one run of {STEPS} steps and a 1-hour wait, on a moto server")
    calls, units, invocations, esm_requests, bare_tick = count_one_run()
    sqs_requests = sum(n for key, n in calls.items() if key.startswith("sqs.")) + esm_requests
    requests = sum(calls.values()) + esm_requests
    lambda_invocations = invocations + 1  # the API function's trigger
    duration_s = requests * ASSUMED_MS_PER_REQUEST / 1000
    ours = (
        lambda_invocations * PRICES["lambda_request"]
        + duration_s * MEMORY_GB * PRICES["lambda_gb_second_arm64"]
        + units.writes * PRICES["dynamodb_write_unit"]
        + units.reads * PRICES["dynamodb_read_unit"]
        + sqs_requests * PRICES["sqs_request"]
    )
    transitions = STEPS + 2  # each Task state, the Wait state, and the end
    step_functions = (
        transitions * PRICES["step_functions_transition"] + STEPS * (PRICES["lambda_request"])
    )
    operations = STEPS + 2  # each step, the wait, and the execution's start
    durable = operations * PRICES["durable_operation"] + 2 * PRICES["lambda_request"]
    emit(
        "requests_per_run",
        requests,
        "requests",
        operations=dict(sorted((k, v) for k, v in calls.items() if v)),
        esm=esm_requests,
        worker_invocations=invocations,
        dynamodb_write_units=units.writes,
        dynamodb_read_units=units.reads,
    )
    emit("scheduler_requests_per_tick", sum(bare_tick.values()), "requests", per="minute")
    emit(
        "usd_per_million_runs",
        ours * 1e6,
        "USD",
        prices_read=PRICES_READ,
        assumed_ms_per_request=ASSUMED_MS_PER_REQUEST,
        memory_gb=MEMORY_GB,
    )
    emit(
        "step_functions_usd_per_million_runs",
        step_functions * 1e6,
        "USD",
        transitions=transitions,
        lambda_invocations=STEPS,
    )
    emit(
        "durable_functions_usd_per_million_runs",
        durable * 1e6,
        "USD",
        durable_operations=operations,
        lambda_invocations=2,
    )


if __name__ == "__main__":
    main()
