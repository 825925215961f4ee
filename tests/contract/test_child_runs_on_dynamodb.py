"""Child tasks end to end on the DynamoDB store (moto): create, nudge, wake, replay."""

from __future__ import annotations

import pytest
from contract_backends import Backend

from durable_lambda import Queue, task
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

pytestmark = pytest.mark.moto


def test_a_parent_waits_on_its_children_through_the_dynamodb_store(aws: Backend):
    registry = TaskRegistry()
    single = Queue("kids", concurrency_limit=1)

    @task(id="kid", registry=registry, queue=single)
    async def kid(payload: int) -> int:
        if payload == 3:
            raise ValueError("three is bad")
        return payload * 10

    @task(id="parent", registry=registry, queue=single)
    async def parent(payload: int) -> list[str]:
        results = await kid.batch_trigger_and_wait(list(range(payload)))
        return [str(r.output) if r.ok else r.status.value for r in results]

    ports = aws.extra["ports"]
    runner = LocalRunner(registry=registry, store=ports.store, flow=ports.flow)
    result = runner.run(parent, 5)
    assert result.output == ["0", "10", "20", "FAILED", "40"]
    tree = runner.tree(result.run_id)
    assert [c["status"] for c in tree["children"]] == ["COMPLETED"] * 3 + ["FAILED", "COMPLETED"]
    child = runner.client.get_run(tree["children"][0]["run_id"])
    assert (child.parent_run_id, child.depth) == (result.run_id, 1)
    # Stored as one of a batch: it counted its own end on the parent (RunRecord.batched).
    assert child.batched
    record = runner.client.get_run(result.run_id)
    assert record.status is RunStatus.COMPLETED
    assert not record.waiting_children
    assert record.finished_at is not None
    # Woken by its children's nudges, not by its fallback wake time an hour later.
    assert (record.finished_at - record.created_at).total_seconds() < 60
    assert runner.flow.state(SlotKey("kids")).count == 0
