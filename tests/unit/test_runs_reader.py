"""durable_lambda.runs: retrieve, list and wait, from the store, as the API returns them."""

from __future__ import annotations

import pytest

from durable_lambda import TaskContext, task, wait
from durable_lambda.errors import RunNotFoundError, RunWaitTimeoutError
from durable_lambda.runs import Runs
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner
from durable_lambda.views import REF_THRESHOLD


@pytest.fixture
def runner():
    registry = TaskRegistry()

    @task(id="reader", registry=registry)
    async def reader(payload: dict, ctx: TaskContext) -> dict:
        small = await ctx.step("small", lambda: {"n": 1})
        big = await ctx.step("big", lambda: "x" * (REF_THRESHOLD + 10))
        await wait.for_(seconds=30)
        ctx.metadata.set("progress", 1.0)
        return {"small": small, "big_size": len(big)}

    return LocalRunner(registry=registry)


def test_retrieve_returns_values_children_and_a_timeline_with_durations(runner):
    result = runner.run("reader", {"blob": "y" * (REF_THRESHOLD + 1)}, tags=["t1"])
    detail = Runs(runner.store).retrieve(result.run_id)
    assert detail.status == "COMPLETED"
    assert detail.tags == ["t1"]
    assert detail.output is not None
    assert detail.output.value == {"small": {"n": 1}, "big_size": REF_THRESHOLD + 10}
    assert not detail.payload.inline
    assert detail.payload.value is None
    assert detail.payload.size > REF_THRESHOLD
    assert detail.metadata == {"progress": 1.0}
    steps = [line for line in detail.timeline if line.kind == "step"]
    assert [(s.name, s.status) for s in steps] == [("small", "COMPLETED"), ("big", "COMPLETED")]
    assert steps[0].result is not None
    assert steps[0].result.value == {"n": 1}
    assert steps[1].result is not None
    assert not steps[1].result.inline
    assert all(s.duration_ms is not None and s.duration_ms >= 0 for s in steps)
    waits = [line for line in detail.timeline if line.kind == "wait"]
    assert len(waits) == 1
    assert waits[0].duration_ms == pytest.approx(30_000, abs=1_000)
    invocations = [line for line in detail.timeline if line.kind == "invocation"]
    assert len(invocations) == 2
    assert all(i.ended_at is not None for i in invocations)
    full = Runs(runner.store).retrieve(result.run_id, include_values=True)
    assert full.payload.value == {"blob": "y" * (REF_THRESHOLD + 1)}


def test_list_filters_and_pages(runner):
    first = runner.trigger("reader", {}, tags=["a"])
    second = runner.trigger("reader", {}, tags=["b"])
    runs = Runs(runner.store)
    assert [r.run_id for r in runs.list(task="reader")] == [second.run_id, first.run_id]
    assert [r.run_id for r in runs.list(tag="a")] == [first.run_id]
    assert [r.run_id for r in runs.list(status="QUEUED", limit=1)] == [second.run_id]
    last = runs.list(limit=1)[0]
    page = runs.list(limit=1, before=(last.created_at, last.run_id))
    assert [r.run_id for r in page] == [first.run_id]


def test_wait_returns_the_final_state_and_times_out_on_a_live_run(runner):
    handle = runner.trigger("reader", {})
    now = [0.0]
    runs = Runs(
        runner.store, sleep=lambda s: now.__setitem__(0, now[0] + s), monotonic=lambda: now[0]
    )
    with pytest.raises(RunWaitTimeoutError, match="still QUEUED after waiting 5 s"):
        runs.wait(handle.run_id, timeout=5, poll_interval=1)
    assert now[0] == 5
    runner.drain()
    assert runs.wait(handle.run_id, timeout=5).status == "COMPLETED"
    with pytest.raises(RunNotFoundError):
        runs.retrieve("run_missing")
