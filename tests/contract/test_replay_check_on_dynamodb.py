"""replay-check against a DynamoDB table (moto): changed code caught, the table left unchanged."""

from __future__ import annotations

import random
from typing import Any

import pytest
from contract_backends import Backend

from durable_lambda import step, task, wait
from durable_lambda.replay_check import Verdict, check
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

pytestmark = pytest.mark.moto


def flow_task(registry: TaskRegistry, second: str) -> None:
    @step(name="first")
    def first() -> str:
        return "x" * 70_000  # above the inline limit: the result lives in S3

    @step(name=second)
    def then() -> int:
        return 2

    @task(id="flow", registry=registry)
    async def flow(payload: dict[str, Any]) -> int:
        await first()
        await then()
        await wait.for_(hours=1)
        return 3


def _table_items(aws: Backend) -> list[dict[str, Any]]:
    client = aws.extra["session"].client("dynamodb")
    items = client.scan(TableName=aws.settings.table_name)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_changed_code_is_caught_on_a_dynamodb_table_which_stays_unchanged(aws: Backend):
    v1 = TaskRegistry()
    flow_task(v1, "second")
    ports = aws.extra["ports"]
    runner = LocalRunner(registry=v1, store=ports.store, flow=ports.flow, rng=random.Random(3))
    run_id = runner.trigger("flow", {}).run_id
    runner.step_once()
    before = _table_items(aws)
    blobs = aws.blob_count()

    assert check(ports.store, v1, clock=runner.clock).ok
    v2 = TaskRegistry()
    flow_task(v2, "second-renamed")
    report = check(ports.store, v2, clock=runner.clock)

    [broken] = report.broken
    assert (broken.run_id, broken.verdict) == (run_id, Verdict.NON_DETERMINISTIC)
    assert (broken.position, broken.recorded, broken.now) == (1, "second#0", "second-renamed#0")
    assert _table_items(aws) == before
    assert aws.blob_count() == blobs
