"""HTTP API figures: requests per trigger, handler latency on moto, and its overhead.

- ``requests_per_trigger``: AWS requests of ``Client.trigger`` (target at most 2:
  one DynamoDB write carrying the run and its TRIGGERED event, one SQS send).
- ``api_trigger_p50_ms``: ``POST /tasks/{id}/runs`` through the API handler
  in-process on moto (the stored API Gateway event, a fresh payload each time).
- ``api_get_run_p50_ms``: ``GET /runs/{id}`` of a completed 100-step run, its
  timeline included.
- ``api_overhead_ratio``: the handler's median time divided by the median time
  of the same AWS requests made bare (same clients, measured interleaved with
  the handler's calls so both see the same load); target at most 1.5. The
  larger of the trigger's and the read's ratios is the figure.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import emit, progress

from durable_lambda import TaskContext, task
from durable_lambda.task import TaskRegistry

EVENTS = Path(__file__).resolve().parents[1] / "events"
ROUNDS = 60
STEPS = 100

registry = TaskRegistry()


@task(id="process-order", registry=registry)
async def process_order(payload: dict[str, Any]) -> str:
    return str(payload.get("order_id"))


@task(id="hundred-steps", registry=registry)
async def hundred_steps(payload: int, ctx: TaskContext) -> int:
    total = 0
    for i in range(payload):
        total += await ctx.step(f"step-{i}", lambda i=i: i)
    return total


class _Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _median_ms(rounds: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:  # noqa: PLR0915 - one linear script: set up, measure, report
    import boto3  # noqa: PLC0415
    import moto  # noqa: PLC0415

    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.api import ApiService, build_api  # noqa: PLC0415
    from durable_lambda.catalog import publish  # noqa: PLC0415
    from durable_lambda.engine.records import EventKind, TimelineEvent  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415
    from durable_lambda.services import build_services  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415
    from durable_lambda.testing import LocalRunner  # noqa: PLC0415
    from durable_lambda.testing.aws_counter import RequestCounter  # noqa: PLC0415

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with moto.mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        settings = ensure_resources(
            Settings(table_name="bench-api", bucket_name="bench-api", api_cursor_key="k"), session
        )
        ports = aws_ports(settings, session)
        assert ports.catalog is not None
        publish(registry, ports.catalog)
        client = build_services(ports, registry, settings).client
        app = build_api(ApiService(client, settings))
        counter = RequestCounter().attach(ports.store.client, ports.queue.client)
        sqs, url = ports.queue.client, settings.resume_queue_url
        drainer = session.client("sqs")  # its requests are not the handler's: not counted

        def drain() -> None:  # moto's SQS slows with depth: keep the queue shallow
            while messages := drainer.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                drainer.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

        progress(f"requests per trigger, {ROUNDS} triggers on moto")
        counter.reset()
        for i in range(ROUNDS):
            client.trigger("process-order", {"order_id": f"c-{i}"})
        requests_per_trigger = sum(counter.snapshot().values()) / ROUNDS
        emit(
            "requests_per_trigger",
            requests_per_trigger,
            "requests",
            target_max=2,
            operations={k: v / ROUNDS for k, v in sorted(counter.snapshot().items())},
        )
        drain()

        progress(f"POST /tasks/process-order/runs through the handler, {ROUNDS} rounds")
        base = json.loads((EVENTS / "api_trigger.json").read_text())
        store = ports.store
        body = json.dumps({"run_id": "run_bench", "epoch": 0})
        definition = client.definition("process-order")

        def bare_trigger(i: int) -> float:
            """The same two requests the handler makes, alone."""
            run = client._new_run(definition, {"order_id": f"b-{i}"}, None).run  # noqa: SLF001
            event = TimelineEvent(run.created_at, EventKind.TRIGGERED, "task process-order")
            actions = [store.meta_put(run), store.event_put(run.run_id, event)]
            start = time.perf_counter()
            store.client.transact_write_items(TransactItems=actions)
            sqs.send_message(QueueUrl=url, MessageBody=body)
            return (time.perf_counter() - start) * 1e3

        def handler_trigger(i: int) -> float:
            event = copy.deepcopy(base)
            event["body"] = json.dumps({"payload": {"order_id": f"h-{i}"}})
            start = time.perf_counter()
            response = app.resolve(event, _Context())
            elapsed = (time.perf_counter() - start) * 1e3
            assert response["statusCode"] == 202, response
            return elapsed

        handler_trigger(-1)  # warm: the first trigger of a task reads its catalog entry
        # Interleaved, so that both see the same load on a shared machine.
        handler_times, bare_times = [], []
        counter.reset()
        for i in range(ROUNDS):
            handler_times.append(handler_trigger(i))
            bare_times.append(bare_trigger(i))
            if i % 20 == 19:
                drain()
        trigger_requests = counter.snapshot()
        trigger_ms = statistics.median(handler_times)
        trigger_bare = statistics.median(bare_times)
        drain()

        progress(f"a {STEPS}-step run, then GET /runs/{{id}} {ROUNDS} times")
        runner = LocalRunner(registry=registry, store=ports.store, flow=ports.flow)
        result = runner.run(hundred_steps, STEPS)
        assert result.ok, result
        read = copy.deepcopy(json.loads((EVENTS / "api_get_run.json").read_text()))
        read["path"] = f"/runs/{result.run_id}"
        read["pathParameters"] = {"run_id": result.run_id}
        detail = json.loads(app.resolve(read, _Context())["body"])
        assert len([line for line in detail["timeline"] if line["kind"] == "step"]) == STEPS
        key = {"pk": {"S": f"RUN#{result.run_id}"}, "sk": {"S": "META"}}
        journal_query = store._prefix_query(result.run_id, "STEP#")  # noqa: SLF001
        events_query = store._prefix_query(result.run_id, "EVT#")  # noqa: SLF001

        def bare_read() -> None:
            store.client.get_item(TableName=store.table, Key=key, ConsistentRead=True)
            store.client.query(**journal_query)
            store.client.query(**events_query)

        counter.reset()
        read_times, bare_read_times = [], []
        for _ in range(ROUNDS):
            read_times.append(_median_ms(1, lambda: app.resolve(read, _Context())))
            bare_read_times.append(_median_ms(1, bare_read))
        read_requests = counter.snapshot()
        read_ms = statistics.median(read_times)
        read_bare = statistics.median(bare_read_times)

        trigger_ratio = trigger_ms / trigger_bare
        read_ratio = read_ms / read_bare
        emit(
            "api_trigger_p50_ms",
            trigger_ms,
            "ms",
            # The counter saw the bare requests too: half of them are the handler's.
            requests=sum(trigger_requests.values()) / ROUNDS / 2,
            bare_requests_ms=round(trigger_bare, 3),
        )
        emit(
            "api_get_run_p50_ms",
            read_ms,
            "ms",
            steps=STEPS,
            requests=sum(read_requests.values()) / ROUNDS / 2,
            bare_requests_ms=round(read_bare, 3),
        )
        emit(
            "api_overhead_ratio",
            max(trigger_ratio, read_ratio),
            "ratio",
            target_max=1.5,
            trigger=round(trigger_ratio, 3),
            get_run=round(read_ratio, 3),
        )


if __name__ == "__main__":
    main()
