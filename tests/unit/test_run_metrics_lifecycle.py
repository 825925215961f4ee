"""The metrics of a run's life: triggers, hops, checkpoint bytes, lags, slot and token waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from durable_lambda import Queue, RunStatus, TaskContext, plugins, serde, step, task, wait
from durable_lambda.run_metrics import (
    CHECKPOINT_BYTES,
    DEAD_LETTERS,
    OVERDUE_RUNS,
    QUEUE_DIMENSION,
    RESUME_LAG,
    RUN_HOPS,
    RUNS_CANCELED,
    RUNS_COMPLETED,
    RUNS_EXPIRED,
    RUNS_TRIGGERED,
    SLOT_WAIT,
    TASK_DIMENSION,
    TOKEN_WAIT,
    RunMetrics,
)
from durable_lambda.scheduler import TickReport


@pytest.fixture
def metrics() -> Iterator[RunMetrics]:
    plugin = plugins.register(RunMetrics(namespace="Tests", service="svc"))
    yield plugin
    plugins.unregister(plugin)


def _values(out: str, dimension: tuple[str, str] | None) -> dict[str, list[float]]:
    """Every metric value of the EMF lines with exactly ``dimension`` (``None``: service-wide)."""
    found: dict[str, list[float]] = {}
    for text in out.splitlines():
        if not text.startswith('{"_aws"'):
            continue
        line = json.loads(text)
        keys = {TASK_DIMENSION, QUEUE_DIMENSION} & set(line)
        mine = (dimension is None and not keys) or (
            dimension is not None and keys == {dimension[0]} and line[dimension[0]] == dimension[1]
        )
        if not mine:
            continue
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = line[metric["Name"]]
            found.setdefault(metric["Name"], []).extend(
                value if isinstance(value, list) else [value]
            )
    return found


def test_hops_checkpoint_bytes_and_resume_lag_of_a_run_that_waits(
    registry, runner, metrics, capsys
):
    @step
    def big(n: int) -> str:
        return "x" * n

    @task(id="m-life", registry=registry)
    async def life(payload: int) -> str:
        first = await big(payload)
        await wait.for_(seconds=60)
        return first[:3]

    handle = runner.trigger(life, 1000)
    again = runner.trigger(life, 1000, idempotency_key="k")
    runner.trigger(life, 1000, idempotency_key="k")  # finds `again`: creates nothing
    assert runner.step_once()  # the first invocation suspends at the wait
    runner.clock.advance(300)  # its wake-up is taken four minutes late
    runner.drain()
    metrics.flush()
    out = capsys.readouterr().out
    mine = _values(out, (TASK_DIMENSION, "m-life"))

    result = runner.result(handle.run_id)
    assert result is not None
    assert result.status is RunStatus.COMPLETED
    assert runner.result(again.run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]
    assert sum(mine[RUNS_TRIGGERED]) == 2
    assert sum(mine[RUNS_COMPLETED]) == 2
    assert mine[RUN_HOPS] == [2, 2]
    journals = runner.journal(handle.run_id) + runner.journal(again.run_id)
    stored = sum(len(e.result.encode()) for e in journals if e.result is not None)
    stored += 2 * len(serde.encode("xxx").encode())
    assert sum(mine[CHECKPOINT_BYTES]) == stored
    assert max(mine[RESUME_LAG]) >= 240_000  # the late one, in milliseconds


def test_slot_wait_is_counted_per_task_and_per_queue_at_each_first_start(
    registry, runner, metrics, capsys
):
    @task(id="m-slot", registry=registry, queue=Queue("m-single", concurrency_limit=1))
    async def quick(payload: str) -> str:
        return payload

    free = runner.start(quick, "a")
    runner.client.pause_queue("m-single")
    parked = runner.start(quick, "b")
    assert runner.client.get_run(parked.run_id).status is RunStatus.WAITING_FOR_SLOT
    runner.clock.advance(45)
    runner.client.resume_queue("m-single")  # the parked run is handed the unit
    runner.drain()
    metrics.flush()
    out = capsys.readouterr().out

    assert runner.result(free.run_id).output == "a"  # type: ignore[union-attr]
    assert runner.result(parked.run_id).output == "b"  # type: ignore[union-attr]
    per_task = _values(out, (TASK_DIMENSION, "m-slot"))[SLOT_WAIT]
    per_queue = _values(out, (QUEUE_DIMENSION, "m-single"))[SLOT_WAIT]
    assert per_task == per_queue
    assert len(per_task) == 2  # one value per first start
    assert max(per_task) >= 45_000  # the parked run's
    assert min(per_task) < 45_000  # the one that started at once


def test_token_wait_is_how_long_the_token_was_pending(registry, runner, metrics, capsys):
    @task(id="m-token", registry=registry)
    async def approve(payload: str) -> str:
        token = await wait.create_token()
        return str(await wait.for_token(token)) + payload

    handle = runner.start(approve, "!")
    runner.advance(45)
    (token,) = runner.pending_tokens(handle.run_id)
    runner.complete_token(token.token_id, "ok")
    metrics.flush()
    out = capsys.readouterr().out

    assert runner.result(handle.run_id).output == "ok!"  # type: ignore[union-attr]
    (waited,) = _values(out, None)[TOKEN_WAIT]
    assert waited >= 45_000


def test_an_expired_run_is_counted_as_expired(registry, runner, metrics, capsys):
    @task(id="m-ttl", registry=registry)
    async def late(payload: int) -> int:
        return payload

    handle = runner.trigger(late, 1, delay=120, ttl=60)
    runner.drain()
    metrics.flush()
    mine = _values(capsys.readouterr().out, (TASK_DIMENSION, "m-ttl"))

    assert runner.result(handle.run_id).status is RunStatus.EXPIRED  # type: ignore[union-attr]
    assert sum(mine[RUNS_EXPIRED]) == 1
    assert RUNS_COMPLETED not in mine


def test_a_scheduler_tick_reports_overdue_runs_and_dead_letters_service_wide(
    runner, metrics, capsys
):
    heard: list[Any] = []

    class Listener:
        def on_scheduler_tick(self, report: TickReport) -> None:
            heard.append(report)

    listener = plugins.register(Listener())
    try:
        report = runner.scheduler.tick()
    finally:
        plugins.unregister(listener)
    assert heard == [report]
    metrics.on_scheduler_tick(TickReport(0, 0, overdue_runs=3, dead_letters_read=2))
    metrics.flush()
    service = _values(capsys.readouterr().out, None)

    assert service[OVERDUE_RUNS] == [report.overdue_runs, 3]
    assert service[DEAD_LETTERS] == [report.dead_letters_read, 2]


def test_a_canceled_run_is_counted_once_whoever_ends_it(registry, runner, metrics, capsys):
    @step
    def cancel_myself(run_id: str) -> str:
        runner.client.cancel_run(run_id)  # held by this invocation: it stops at the next step
        return run_id

    @step
    def never(run_id: str) -> str:
        return run_id

    @task(id="m-cancel-self", registry=registry)
    async def self_canceling(payload: int, ctx: TaskContext) -> str:
        await cancel_myself(ctx.run_id)
        return await never(ctx.run_id)

    @task(id="m-cancel-waiting", registry=registry)
    async def waiting(payload: int) -> str:
        token = await wait.create_token()
        return str(await wait.for_token(token))

    held = runner.start(self_canceling, 1)
    parked = runner.start(waiting, 1)
    runner.client.cancel_run(parked.run_id)  # nobody holds it: CANCELED at once, here
    runner.drain()
    metrics.flush()
    out = capsys.readouterr().out

    assert runner.result(held.run_id).status is RunStatus.CANCELED  # type: ignore[union-attr]
    assert runner.result(parked.run_id).status is RunStatus.CANCELED  # type: ignore[union-attr]
    assert _values(out, (TASK_DIMENSION, "m-cancel-self"))[RUNS_CANCELED] == [1]
    assert _values(out, (TASK_DIMENSION, "m-cancel-waiting"))[RUNS_CANCELED] == [1]
    assert sum(_values(out, None)[RUNS_CANCELED]) == 2
