"""``ctx.metadata`` and ``ctx.logger``: once per run however often the task body replays."""

from __future__ import annotations

import logging

import pytest

from durable_lambda import (
    RetryPolicy,
    RunStatus,
    Settings,
    TaskContext,
    Transaction,
    step,
    task,
    wait,
)
from durable_lambda.engine.metadata import METADATA_LIMIT
from durable_lambda.testing import LocalRunner


def test_an_increment_before_a_suspension_is_not_applied_again_by_the_replay(registry, runner):
    @task(id="meta-wait", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.metadata.increment("pages")
        ctx.metadata.append("log", "started")
        await wait.for_(hours=1)  # suspends: the next invocation replays the lines above
        ctx.metadata.increment("pages", 2)
        ctx.metadata.set("progress", 1.0)
        return payload

    result = runner.run(run, 1)
    assert result.status is RunStatus.COMPLETED
    assert runner.invocations[result.run_id] == 2
    stored = runner.client.get_run(result.run_id)
    assert stored.metadata == {"pages": 3, "log": ["started"], "progress": 1.0}


def test_metadata_survives_a_deadline_hop_replay_without_doubling(registry):
    runner = LocalRunner(registry=registry, deadline=60.0)

    @step
    def first() -> int:
        return 1

    @step(expected_duration=3600)  # never fits beside another step: forces a hop before it
    def long() -> int:
        return 2

    @task(id="meta-hop", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        await first()
        ctx.metadata.increment("pages")  # after the last record: only the checkpoint carries it
        return await long()

    result = runner.run(run, 1)
    assert result.output == 2
    assert runner.invocations[result.run_id] == 2
    assert runner.client.get_run(result.run_id).metadata == {"pages": 1}


def test_metadata_is_readable_from_outside_while_the_run_goes(registry, runner):
    seen: list[dict[str, object]] = []

    @step
    def first() -> int:
        return 1

    @step
    def look(run_id: str) -> int:
        seen.append(dict(runner.client.get_run(run_id).metadata))
        return 0

    @task(id="meta-live", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.metadata.set("progress", 0.4)
        await first()  # its record carries the change: no request of its own
        await look(ctx.run_id)
        return payload

    runner.run(run, 1)
    assert seen == [{"progress": 0.4}]


def test_a_step_bodys_change_takes_effect_only_with_its_successful_record(registry, runner):
    attempts: list[int] = []

    @step(retry=RetryPolicy(max_attempts=3, randomize=False))
    def fetch(ctx: TaskContext) -> int:
        ctx.metadata.increment("fetches")
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("flaky")
        return 1

    @task(id="meta-step", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        return await fetch(ctx)

    result = runner.run(run, 1)
    assert result.output == 1
    assert runner.client.get_run(result.run_id).metadata == {"fetches": 1}


def test_metadata_above_the_limit_is_refused_at_the_call_naming_size_and_limit(registry, runner):
    @task(id="meta-big", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.metadata.set("blob", "x" * METADATA_LIMIT)
        return payload

    result = runner.run(run, 1)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "run metadata is 32" in result.error.message
    assert f"above the maximum of {METADATA_LIMIT} bytes" in result.error.message


def test_each_task_log_line_appears_once_per_real_execution(registry, runner, caplog):
    @step
    def charge(ctx: TaskContext) -> int:
        ctx.logger.info("charging", extra={"amount": 42})
        return 42

    @task(id="log-once", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.logger.info("before the wait")
        amount = await charge(ctx)
        await wait.for_(hours=1)
        ctx.logger.info("after the wait")
        return amount

    with caplog.at_level(logging.INFO):
        result = runner.run(run, 1)
    assert runner.invocations[result.run_id] == 2
    lines = [r for r in caplog.records if r.name.startswith("durable-lambda.")]
    assert [r.getMessage() for r in lines] == ["before the wait", "charging", "after the wait"]
    assert {(r.run_id, r.task_id, r.attempt) for r in lines} == {(result.run_id, "log-once", 1)}
    assert [r.step_key for r in lines] == [None, "charge#0", None]
    assert lines[1].amount == 42


def test_metadata_outside_a_run_is_a_plain_mapping():
    ctx = TaskContext(run_id="r", task_id="t")
    ctx.metadata.set("a", 1)
    ctx.metadata.increment("a")
    with pytest.raises(Exception, match="not a list"):
        ctx.metadata.append("a", 2)
    assert dict(ctx.metadata) == {"a": 2}


def test_a_change_whose_record_was_never_written_is_not_stored(registry):
    runner = LocalRunner(registry=registry, deadline=60.0)
    bodies: list[int] = []

    @step
    def note(ctx: TaskContext) -> int:
        ctx.metadata.append("log", "b")
        bodies.append(1)
        if len(bodies) == 1:
            runner.clock.advance(61)  # the invocation dies: this step's record is refused
        return 1

    @task(id="meta-killed", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.metadata.append("log", "a")
        await wait.for_(hours=1)  # the next invocation starts from the stored ["a"]
        return await note(ctx)

    result = runner.run(run, 1)
    assert result.output == 1
    assert bodies == [1, 1]
    assert runner.client.get_run(result.run_id).metadata == {"log": ["a", "b"]}


@pytest.mark.parametrize("transactional", [False, True])
def test_a_change_whose_result_was_too_large_to_record_is_dropped(registry, transactional):
    # The write refuses the result after the body's change was settled: the
    # attempt failed after all, so its change must not reach the stored metadata.
    settings = Settings(inline_limit=100, max_value_bytes=8_000)
    runner = LocalRunner(registry=registry, settings=settings)
    runner.tables.create("exports", key=("id",))

    def export(ctx: TaskContext) -> str:
        ctx.metadata.increment("exports")
        return "x" * 20_000

    def export_tx(tx: Transaction, ctx: TaskContext) -> str:
        tx.put("exports", {"id": "e-1"})
        return export(ctx)

    @task(id="meta-too-large", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> str:
        ctx.metadata.set("started", True)
        if transactional:
            return await ctx.transact("export", export_tx, ctx)
        return await ctx.step("export", export, ctx)

    result = runner.run(run, 1)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "step 'export#0' result is 20002 bytes" in result.error.message
    assert runner.client.get_run(result.run_id).metadata == {"started": True}
    assert runner.tables.get("exports", {"id": "e-1"}) is None  # nor did its writes commit
