"""X-Ray: a subsegment per invocation and per step attempt, annotated with run and task ids."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder

from durable_lambda import RetryPolicy, plugins, step, task, wait
from durable_lambda.run_traces import RunTraces


class _Emitter:
    """Keeps what X-Ray would send to its daemon."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(entity)

    def set_daemon_address(self, address: str) -> None:
        """Nothing is sent anywhere."""


@pytest.fixture
def segment() -> Iterator[Any]:
    """A real X-Ray segment, as Lambda opens one around each invocation."""
    enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(emitter=_Emitter(), sampling=False, context_missing="LOG_ERROR")
    opened = xray_recorder.begin_segment("worker")
    plugin = plugins.register(RunTraces(xray_recorder))
    try:
        yield opened
    finally:
        plugins.unregister(plugin)
        xray_recorder.clear_trace_entities()
        global_sdk_config.set_sdk_enabled(enabled)


def test_each_invocation_and_step_attempt_is_a_subsegment_with_the_run_and_task(
    registry, runner, segment
):
    calls: list[int] = []

    @step(retry=RetryPolicy(max_attempts=2, randomize=False))
    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise ValueError("first attempt fails")
        return n

    @step
    def branch(label: str) -> str:
        return label

    @task(id="traced", registry=registry)
    async def traced(payload: int) -> list[str]:
        await flaky(payload)
        await wait.for_(seconds=30)
        return list(await asyncio.gather(branch("a"), branch("b")))

    result = runner.run(traced, 1)
    invocations = segment.subsegments
    names = [sub.name for sub in invocations]

    assert result.output == ["a", "b"]
    assert names == ["## run traced"] * runner.invocations[result.run_id]
    assert len(names) == 3  # the retry's backoff and the wait each suspended the run
    for sub in invocations:
        assert sub.annotations["run_id"] == result.run_id
        assert sub.annotations["task_id"] == "traced"
    assert [sub.annotations["outcome"] for sub in invocations] == [
        "suspended",
        "suspended",
        "succeeded",
    ]
    steps = [
        (s.name, s.annotations["attempt"], s.annotations["outcome"])
        for sub in invocations
        for s in sub.subsegments
    ]
    assert steps == [
        ("## step flaky#0", 1, "retrying"),
        ("## step flaky#0", 2, "succeeded"),
        ("## step t0/branch#0", 1, "succeeded"),
        ("## step t1/branch#0", 1, "succeeded"),
    ]
    for sub in invocations:
        for child in sub.subsegments:
            assert child.annotations["run_id"] == result.run_id
            assert sub.start_time <= child.start_time <= child.end_time <= sub.end_time


def test_a_step_that_fails_is_annotated_with_its_error_type_never_its_message(
    registry, runner, segment
):
    @step(retry=RetryPolicy(max_attempts=1))
    def broken() -> None:
        raise RuntimeError("secret-7f3a detail")

    @task(id="traced-bad", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def bad(payload: int) -> None:
        await broken()

    runner.run(bad, 1)
    (invocation,) = segment.subsegments
    (attempt,) = invocation.subsegments

    assert attempt.annotations["outcome"] == "failed"
    assert attempt.annotations["error_type"].endswith("RuntimeError")
    assert "secret-7f3a" not in str(invocation.to_dict())


def test_without_a_segment_nothing_is_traced_and_the_run_completes(registry, runner):
    plugin = plugins.register(RunTraces(xray_recorder))
    try:

        @task(id="untraced", registry=registry)
        async def untraced(payload: int) -> int:
            return payload

        assert runner.run(untraced, 3).output == 3
    finally:
        plugins.unregister(plugin)
