"""Effect controls of a step: which errors retry (``retry_on``) and ``at_most_once``."""

from __future__ import annotations

from durable_lambda import RetryPolicy, RunStatus, step, task
from durable_lambda.engine.journal import EntryStatus


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
