"""Run-outcome hooks: once per outcome, journaled, and never able to change the outcome."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from durable_lambda import ConfigurationError, RetryPolicy, RunStatus, TaskContext, step, task
from durable_lambda.adapters.memory import memory_ports
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.records import Checkpoint, Fence, RunRecord
from durable_lambda.settings import Settings
from durable_lambda.testing import LocalRunner, SkipClock
from durable_lambda.testing.deadline import InvocationKilled


class DiesAtFirstCompletion:
    """A run store whose first COMPLETED checkpoint dies with its invocation."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.flow = inner.flow
        self.killed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        if checkpoint.status is RunStatus.COMPLETED and not self.killed:
            self.killed += 1
            raise InvocationKilled("the checkpoint", 0.0)
        return self.inner.checkpoint(run_id, fence, checkpoint)


@step
def double(n: int) -> int:
    return 2 * n


def test_on_success_sees_the_output_and_is_not_run_again_by_a_replay(registry):
    calls: list[tuple[Any, Any, str]] = []

    def notify(payload: int, output: int, ctx: TaskContext) -> None:
        calls.append((payload, output, ctx.run_id))

    @task(id="hook-success", registry=registry, on_success=notify)
    async def run(payload: int) -> int:
        return await double(payload)

    clock = SkipClock()
    store = DiesAtFirstCompletion(memory_ports(Settings(), clock).store)
    runner = LocalRunner(registry=registry, store=store, clock=clock)
    result = runner.run(run, 21)
    assert result.output == 42
    assert store.killed == 1  # the first invocation died after the hook, before its checkpoint
    assert calls == [(21, 42, result.run_id)]  # the replay returned the hook's record
    keys = [(e.key, e.status, e.result) for e in runner.journal(result.run_id)]
    assert keys == [
        ("double#0", EntryStatus.COMPLETED, "42"),
        ("$on_success#0", EntryStatus.COMPLETED, "null"),
    ]


def test_on_failure_runs_once_when_the_run_fails_for_good_not_on_retried_attempts(registry, runner):
    seen: list[tuple[int, str, int]] = []

    async def alert(payload: int, error: Exception, ctx: TaskContext) -> None:
        seen.append((payload, str(error), ctx.attempt))

    @task(id="hook-failure", registry=registry, retry=RetryPolicy(max_attempts=2), on_failure=alert)
    async def run(payload: int, ctx: TaskContext) -> int:
        raise ValueError(f"attempt {ctx.attempt} broke")

    result = runner.run(run, 3)
    assert result.status is RunStatus.FAILED
    assert seen == [(3, "attempt 2 broke", 2)]


def test_a_failing_hook_is_recorded_and_logged_but_the_run_still_completes(
    registry, runner, caplog
):
    def broken(payload: int, output: int, ctx: TaskContext) -> None:
        raise RuntimeError("mail server down")

    @task(id="hook-broken", registry=registry, on_success=broken)
    async def run(payload: int) -> int:
        return await double(payload)

    with caplog.at_level(logging.WARNING, logger="durable-lambda"):
        result = runner.run(run, 1)
    assert result.status is RunStatus.COMPLETED
    assert result.output == 2
    hook = runner.journal(result.run_id)[-1]
    assert (hook.key, hook.result) == ("$on_success#0", '"RuntimeError: mail server down"')
    [line] = [r for r in caplog.records if r.msg == "task hook failed"]
    assert (line.hook, line.error, line.run_id) == ("on_success", "RuntimeError", result.run_id)


def test_a_hook_that_is_not_callable_is_refused_at_declaration(registry):
    with pytest.raises(ConfigurationError, match="on_failure must be a callable"):

        @task(id="hook-bad", registry=registry, on_failure="page me")  # type: ignore[arg-type]
        async def run(payload: int) -> int:
            return payload
