"""Engine benchmarks: per-step overhead, replay speed, DynamoDB writes per step,
and the same workload through the AWS durable execution SDK's test runner.

Run: ``make bench`` or ``.venv/bin/python benchmarks/engine.py``.
Prints one JSON object per line: {"figure": NAME, "value": NUMBER, "unit": UNIT}.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, median_of, progress

from durable_lambda import step, task
from durable_lambda.engine.execution import Environment, Execution
from durable_lambda.engine.journal import EntryKind, EntryStatus, Journal, JournalEntry
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

STEPS = 1_000
registry = TaskRegistry()


@step
def noop(i: int) -> int:
    return i


@task(id="bench-steps", registry=registry)
async def many_steps(payload: int) -> int:
    total = 0
    for i in range(payload):
        total += await noop(i)
    return total


def step_overhead_us() -> float:
    """Whole-run time per step: trigger, lease, replay, 1,000 recorded steps, checkpoint."""
    runner = LocalRunner(registry=registry)
    start = time.perf_counter()
    result = runner.run(many_steps, STEPS)
    elapsed = time.perf_counter() - start
    assert result.output == sum(range(STEPS)), result
    return elapsed / STEPS * 1e6


class _Reached(Exception):  # noqa: N818 - a signal for the benchmark only
    pass


def replay_ms() -> float:
    """Replay 1,000 recorded steps and reach the 1,001st (new) step."""
    now = dt.datetime.now(dt.UTC)
    entries = [
        JournalEntry(
            seq=i,
            name="noop",
            occurrence=i,
            kind=EntryKind.STEP,
            status=EntryStatus.COMPLETED,
            result=str(i),
            started_at=now,
            ended_at=now,
        )
        for i in range(STEPS)
    ]
    reached: list[float] = []

    def record(_entry: JournalEntry) -> None:
        reached.append(time.perf_counter())
        raise _Reached

    env = Environment(now=lambda: now, remaining=lambda: 900.0, record=record)
    execution = Execution(
        run_id="bench",
        attempt=1,
        journal=Journal.of(entries),
        env=env,
        task_retry=RetryPolicy(max_attempts=1),
    )
    start = time.perf_counter()
    # A store error ends the invocation: here, the first new step's record.
    with contextlib.suppress(_Reached):
        execution.run(lambda: many_steps.fn(STEPS + 1))
    assert reached, "the replay never reached the new step"
    assert execution.steps_replayed == STEPS
    return (reached[0] - start) * 1e3


def ddb_writes_per_step() -> tuple[float, float]:
    """Marginal DynamoDB write requests per completed step on moto, and the fixed cost per run."""
    from moto import mock_aws  # noqa: PLC0415

    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415
    from durable_lambda.testing.aws_counter import RequestCounter  # noqa: PLC0415

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        settings = ensure_resources(Settings(table_name="bench", bucket_name="bench-values"))
        ports = aws_ports(settings)
        writes: dict[int, int] = {}
        for n in (100, 200):
            runner = LocalRunner(
                registry=registry, settings=settings, store=ports.store, flow=ports.flow
            )
            counter = RequestCounter().attach(ports.store.client)
            result = runner.run(many_steps, n)
            counter.detach()
            assert result.ok, result.error
            writes[n] = counter.dynamodb_writes()
    per_step = (writes[200] - writes[100]) / 100
    fixed = writes[100] - 100 * per_step
    return per_step, fixed


AWS_HANDLER = None


def aws_durable_sdk_step_us() -> float | None:
    """The same 1,000 no-op steps through DurableFunctionTestRunner (skip_time on)."""
    try:
        from aws_durable_execution_sdk_python.context import (  # noqa: PLC0415
            DurableContext,
            durable_step,
        )
        from aws_durable_execution_sdk_python.execution import durable_execution  # noqa: PLC0415
        from aws_durable_execution_sdk_python_testing.runner import (  # noqa: PLC0415
            DurableFunctionTestRunner,
        )
    except ImportError:
        progress("aws-durable-execution-sdk-python not installed (pip install '.[bench]'); skipped")
        return None

    @durable_step
    def aws_noop(_step_ctx: object, i: int) -> int:
        return i

    @durable_execution
    def handler(_event: object, context: DurableContext) -> int:
        total = 0
        for i in range(STEPS):
            total += context.step(aws_noop(i))
        return total

    with DurableFunctionTestRunner(handler=handler, skip_time=True) as runner:
        start = time.perf_counter()
        result = runner.run(input=json.dumps({}), execution_timeout=600)
        elapsed = time.perf_counter() - start
    assert result.result is not None
    assert int(result.result) == sum(range(STEPS)), result.result
    return elapsed / STEPS * 1e6


def main() -> None:
    progress(f"{STEPS} no-op steps on the memory backend")
    ours = median_of(9, step_overhead_us)
    emit("step_overhead_us", ours, "us", target_max=50)
    progress("replaying a 1,000-step journal")
    emit("replay_1000_steps_ms", median_of(9, replay_ms), "ms", target_max=20)
    progress("counting DynamoDB writes on moto (100 and 200 steps)")
    per_step, fixed = ddb_writes_per_step()
    emit("ddb_writes_per_step", per_step, "requests", target=1.0)
    emit("ddb_writes_per_run_fixed", fixed, "requests")
    progress("the same workload through aws-durable-execution-sdk-python's test runner")
    theirs = aws_durable_sdk_step_us()
    if theirs is not None:
        emit("aws_durable_sdk_step_us", theirs, "us")
        emit("ratio_vs_aws_durable_sdk", theirs / ours, "x", target_min=20)


if __name__ == "__main__":
    main()
