"""The metrics plugin: per-task EMF lines with counts and timings, bounded output, no run ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from durable_lambda import RetryPolicy, RunStatus, plugins, step, task
from durable_lambda.run_metrics import (
    INVOCATIONS,
    INVOCATIONS_SUSPENDED,
    METRIC_NAMES,
    RUNS_COMPLETED,
    RUNS_FAILED,
    RUNS_STARTED,
    RUNS_TRIGGERED,
    STEP_DURATION,
    STEP_RETRIES,
    STEPS_FAILED,
    RunMetrics,
)


@pytest.fixture
def metrics() -> Iterator[RunMetrics]:
    plugin = plugins.register(RunMetrics(namespace="Tests", service="svc"))
    yield plugin
    plugins.unregister(plugin)


def _emitted(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def _totals(lines: list[dict[str, Any]], task_id: str) -> dict[str, list[float]]:
    totals: dict[str, list[float]] = {}
    for line in lines:
        if line.get("task_id") != task_id or (task_id is None and "queue" in line):
            continue
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = line[metric["Name"]]
            totals.setdefault(metric["Name"], []).extend(
                value if isinstance(value, list) else [value]
            )
    return totals


def test_a_retried_step_and_a_failed_run_are_counted_under_their_own_task(
    registry, runner, metrics, capsys
):
    calls: list[int] = []

    @step(retry=RetryPolicy(max_attempts=3, randomize=False))
    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise ValueError("first attempt fails")
        return n

    @step(retry=RetryPolicy(max_attempts=1))
    def broken() -> None:
        raise RuntimeError("always")

    @task(id="metrics-ok", registry=registry)
    async def ok(payload: int) -> int:
        return await flaky(payload)

    @task(id="metrics-bad", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def bad(payload: int) -> None:
        await broken()

    good, failed = runner.run(ok, 1), runner.run(bad, 1)
    metrics.flush()
    lines = _emitted(capsys.readouterr().out)

    assert (good.status, failed.status) == (RunStatus.COMPLETED, RunStatus.FAILED)
    assert {line.get("task_id") for line in lines} == {"metrics-ok", "metrics-bad", None}
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Tests" for line in lines)
    ok_totals, bad_totals = _totals(lines, "metrics-ok"), _totals(lines, "metrics-bad")
    assert sum(ok_totals[RUNS_STARTED]) == 1
    assert sum(ok_totals[INVOCATIONS]) == 2  # the retry's backoff suspended the run once
    assert sum(ok_totals[INVOCATIONS_SUSPENDED]) == 1
    assert sum(ok_totals[STEP_RETRIES]) == 1
    assert len(ok_totals[STEP_DURATION]) == 2  # each attempt timed
    assert sum(ok_totals[RUNS_COMPLETED]) == 1
    assert RUNS_FAILED not in ok_totals
    assert sum(bad_totals[RUNS_FAILED]) == 1
    assert sum(bad_totals[STEPS_FAILED]) == 1
    assert RUNS_COMPLETED not in bad_totals
    assert set(ok_totals) | set(bad_totals) <= set(METRIC_NAMES)
    service_wide = _totals(lines, None)  # the alarm's view: every task together
    assert sum(service_wide[RUNS_STARTED]) == 2
    assert sum(service_wide[RUNS_COMPLETED]) == 1
    assert sum(service_wide[RUNS_FAILED]) == 1
    assert sum(service_wide[RUNS_TRIGGERED]) == 2
    assert set(service_wide) == {RUNS_TRIGGERED, RUNS_STARTED, RUNS_COMPLETED, RUNS_FAILED}
    text = json.dumps(lines)
    assert good.run_id not in text
    assert failed.run_id not in text


def test_a_thousand_steps_cost_a_handful_of_lines_not_a_thousand(registry, runner, metrics, capsys):
    @step
    def noop(i: int) -> int:
        return i

    @task(id="metrics-many", registry=registry)
    async def many(payload: int) -> int:
        for i in range(payload):
            await noop(i)
        return payload

    runner.run(many, 1000)  # Powertools writes a line each time a metric reaches 100 values
    metrics.flush()
    lines = _emitted(capsys.readouterr().out)

    assert len(_totals(lines, "metrics-many")[STEP_DURATION]) == 1000
    # 100 values per line: ten lines of step durations, one with the task's invocation
    # counts and checkpoint bytes, one with the service-wide run counts, one per queue.
    assert len(lines) <= 13


def test_flush_with_nothing_recorded_writes_nothing(metrics, capsys):
    metrics.flush()
    assert _emitted(capsys.readouterr().out) == []
