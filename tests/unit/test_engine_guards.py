"""What the engine refuses: dropped steps, store errors in user code, results it cannot record."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest

from durable_lambda import RetryPolicy, RunStatus, StepFailedError, step, task, wait
from durable_lambda.adapters.memory import MemoryBlobStore, MemoryRunStore
from durable_lambda.engine.execution import Environment, Execution
from durable_lambda.engine.journal import EntryKind, EntryStatus, Journal, JournalEntry
from durable_lambda.engine.outcome import Completed
from durable_lambda.engine.records import Fence
from durable_lambda.testing import LocalRunner
from durable_lambda.values import ValueStore


def _drive_until(runner: LocalRunner, run_id: str, key: str) -> None:
    while key not in {e.key for e in runner.journal(run_id)}:
        assert runner.step_once(), f"run went idle before recording {key}"


def test_a_deploy_that_drops_trailing_steps_fails_with_non_determinism(registry, runner):
    version = {"v": 1}

    @step
    def a() -> str:
        return "a"

    @step
    def charge() -> int:
        return 42

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        await wait.for_(minutes=5)
        await a()
        if version["v"] == 2:
            return "returned early"  # the new code stops here
        await charge()
        await wait.for_(minutes=5)
        return "done"

    handle = runner.trigger(flow, None)
    _drive_until(runner, handle.run_id, "$wait#1")
    version["v"] = 2
    runner.drain()
    run = runner.client.get_run(handle.run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type.endswith("NonDeterminismError")
    assert "'charge#0'" in run.error.message
    assert "returns without calling it" in run.error.message


class Throttled(Exception):  # noqa: N818 - mimics botocore's error names
    """A store error that outlived the client's retries."""


class FlakyStore:
    """A memory store whose next ``failures`` step records raise ``Throttled``."""

    def __init__(self, inner: MemoryRunStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def record_entry(self, run_id: str, fence: Fence, entry: JournalEntry) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise Throttled("ProvisionedThroughputExceededException")
        self.inner.record_entry(run_id, fence, entry)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_store_error_while_recording_never_reaches_user_code_nor_spends_an_attempt(registry):
    values = ValueStore(MemoryBlobStore(), 65536, 10 * 1024 * 1024)
    store = FlakyStore(MemoryRunStore(values), failures=1)
    runner = LocalRunner(registry=registry, store=store, flow=store.inner.flow)  # type: ignore[arg-type]
    seen: list[str] = []
    charged: Counter[str] = Counter()

    @step
    def charge() -> int:
        charged["n"] += 1
        return 42

    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def flow(payload: None) -> int:
        try:
            return await charge()
        except Exception as exc:  # noqa: BLE001 - a user's broad handler must not see store errors
            seen.append(type(exc).__name__)
            return -1

    handle = runner.trigger(flow, None)
    message = runner.queue.receive(runner.clock.now(), max_messages=1)[0]
    with pytest.raises(Throttled):
        runner.invoke_once(message.run_id, message.epoch)
    run = runner.client.get_run(handle.run_id)
    assert seen == []
    assert run.status is RunStatus.RUNNING  # held until its lease expires, then redelivered
    assert run.attempt == 1
    assert runner.journal(handle.run_id) == []

    # SQS redelivers the message after its visibility timeout; the lease has expired.
    assert run.lease_expiry is not None
    runner.clock.advance_to(run.lease_expiry + dt.timedelta(seconds=1))
    runner.invoke_once(message.run_id, message.epoch)
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.status is RunStatus.COMPLETED
    assert result.output == 42
    assert seen == []
    assert charged["n"] == 2  # the crash-between-effect-and-record case the guarantee allows


def test_a_result_that_does_not_match_the_annotation_fails_the_step_naming_it(registry, runner):
    calls: Counter[str] = Counter()

    @step(retry=RetryPolicy(max_attempts=3))
    def lookup() -> dict:  # type: ignore[type-arg]
        calls["n"] += 1
        return None  # type: ignore[return-value]

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        try:
            await lookup()
        except StepFailedError as exc:
            return str(exc)
        return "recorded"

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert "step 'lookup#0'" in result.output
    assert "SerializationError" in result.output
    assert calls["n"] == 1  # terminal: not retried
    (entry,) = runner.journal(result.run_id)
    assert entry.status is EntryStatus.FAILED
    assert entry.error is not None
    assert "lookup#0" in entry.error.message


def test_a_journal_written_before_scopes_existed_keeps_replaying():
    legacy = [
        JournalEntry(0, "a", 0, EntryKind.STEP, EntryStatus.COMPLETED, result='"A"'),
        JournalEntry(1, "$wait", 0, EntryKind.WAIT, EntryStatus.WAITING, wake_at=_past()),
        JournalEntry(2, "a", 1, EntryKind.STEP, EntryStatus.COMPLETED, result='"B"'),
    ]
    recorded: list[JournalEntry] = []
    execution = Execution(
        run_id="r",
        attempt=1,
        journal=Journal.of(legacy),
        env=Environment(now=_now, remaining=lambda: 100.0, record=recorded.append),
        task_retry=RetryPolicy(),
    )

    async def a_step() -> str:
        return "never runs"

    async def body() -> list[str]:
        from durable_lambda.engine.execution import StepSpec  # noqa: PLC0415

        first = await execution.call_step(StepSpec("a"), a_step)
        await execution.wait_until(_past())
        second = await execution.call_step(StepSpec("a"), a_step)
        third = await execution.call_step(StepSpec("b"), lambda: "new")
        return [first, second, third]

    outcome = execution.run(body)
    assert isinstance(outcome, Completed)
    assert outcome.output == '["A","B","new"]'
    assert [e.seq for e in recorded] == [3]  # the new step takes the next free slot
    assert [(e.key, e.status) for e in outcome.entries] == [("$wait#0", EntryStatus.COMPLETED)]


def _now() -> dt.datetime:
    return dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def _past() -> dt.datetime:
    return _now() - dt.timedelta(hours=1)


def test_gather_of_plain_step_coroutines_numbers_each_call_in_its_own_scope(registry, runner):
    @step
    async def echo(x: int) -> int:
        await asyncio.sleep(0.001 * (3 - x))
        return x

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[int]:
        values = list(await asyncio.gather(echo(0), echo(1), echo(2)))
        await wait.for_(minutes=1)
        return values

    result = runner.run(flow, None)
    assert result.output == [0, 1, 2]
    assert sorted(e.key for e in runner.journal(result.run_id)) == [
        "$wait#0",
        "t0/echo#0",
        "t1/echo#0",
        "t2/echo#0",
    ]
