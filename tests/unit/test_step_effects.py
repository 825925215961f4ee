"""Effect controls of a step: which errors retry (``retry_on``) and ``at_most_once``."""

from __future__ import annotations

import random

import pytest

from durable_lambda import ConfigurationError, RetryPolicy, RunStatus, TaskContext, step, task
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.testing import LocalRunner


class TransientError(Exception):
    pass


def test_an_error_outside_retry_on_fails_the_step_at_once(registry, runner):
    calls: list[str] = []

    @step(retry=RetryPolicy(max_attempts=5, retry_on=(TransientError,), randomize=False))
    def charge(kind: str) -> str:
        calls.append(kind)
        raise KeyError(kind)

    @task(id="retry-on-outside", registry=registry)
    async def run(payload: str) -> str:
        return await charge(payload)

    result = runner.run(run, "card")
    assert result.status is RunStatus.FAILED
    assert calls == ["card"]
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 1)


def test_an_error_inside_retry_on_follows_the_backoff(registry, runner):
    calls: list[int] = []

    @step(retry=RetryPolicy(max_attempts=5, retry_on=(TransientError,), randomize=False))
    def charge(n: int) -> int:
        calls.append(n)
        if len(calls) < 3:
            raise TransientError
        return n

    @task(id="retry-on-inside", registry=registry)
    async def run(payload: int) -> int:
        return await charge(payload)

    result = runner.run(run, 4)
    assert result.output == 4
    assert calls == [4, 4, 4]
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.COMPLETED, 3)


DEADLINE = 30.0


def killing_runner(registry) -> LocalRunner:
    """A runner whose step bodies can end their invocation: advance past its deadline."""
    return LocalRunner(registry=registry, deadline=DEADLINE, rng=random.Random(3))


def test_at_most_once_records_started_before_its_body_runs(registry):
    runner = killing_runner(registry)
    seen: list[list[tuple[str, EntryStatus]]] = []

    @step(semantics="at_most_once")
    def charge(run_id: str) -> str:
        seen.append([(e.key, e.status) for e in runner.journal(run_id)])
        return "ok"

    @task(id="amo-started", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> str:
        return await charge(ctx.run_id)

    result = runner.run(run, 1)
    assert result.output == "ok"
    assert seen == [[("charge#0", EntryStatus.STARTED)]]
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.COMPLETED, 1)


def test_an_interrupted_at_most_once_attempt_is_not_rerun_and_fails_the_step(registry):
    runner = killing_runner(registry)
    bodies: list[int] = []

    @step(semantics="at_most_once", retry=RetryPolicy(max_attempts=1))
    def charge(n: int) -> int:
        bodies.append(n)
        runner.clock.advance(DEADLINE + 1)  # the invocation dies before the result is recorded
        return n

    @task(id="amo-no-retry", registry=registry)
    async def run(payload: int) -> int:
        return await charge(payload)

    result = runner.run(run, 5)
    assert result.status is RunStatus.FAILED
    assert bodies == [5]  # never run again
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 1)
    assert entry.error is not None
    assert entry.error.type == "durable_lambda.errors.StepInterruptedError"
    assert [r.action for r in runner.reports] == ["killed", "executed"]


def test_an_interrupted_at_most_once_attempt_counts_and_the_policy_retries(registry):
    runner = killing_runner(registry)
    attempts: list[int] = []

    @step(semantics="at_most_once", retry=RetryPolicy(max_attempts=3, randomize=False))
    def charge(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            runner.clock.advance(DEADLINE + 1)
        return n

    @task(id="amo-retry", registry=registry)
    async def run(payload: int) -> int:
        return await charge(payload)

    result = runner.run(run, 9)
    assert result.output == 9
    assert attempts == [9, 9]
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.COMPLETED, 2)  # attempt 1 was spent


def test_retry_on_also_decides_an_interrupted_attempt(registry):
    runner = killing_runner(registry)
    attempts: list[int] = []

    @step(
        semantics="at_most_once",
        retry=RetryPolicy(max_attempts=3, retry_on=(TransientError,)),
    )
    def charge(n: int) -> int:
        attempts.append(n)
        runner.clock.advance(DEADLINE + 1)
        return n

    @task(id="amo-retry-on", registry=registry)
    async def run(payload: int) -> int:
        return await charge(payload)

    result = runner.run(run, 2)
    assert result.status is RunStatus.FAILED
    assert attempts == [2]


def test_an_unknown_semantics_is_refused_at_declaration():
    with pytest.raises(ConfigurationError, match="semantics must be one of"):
        step(semantics="exactly_once")(lambda: None)  # type: ignore[call-overload]
