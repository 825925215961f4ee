"""Replay: recorded steps return their results without running their bodies again."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from pydantic import BaseModel

from durable_lambda import (
    AbortRun,
    NonDeterminismError,
    RetryAfter,
    RetryPolicy,
    RunStatus,
    Settings,
    TaskContext,
    step,
    task,
    wait,
)
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.errors import Suspend
from durable_lambda.testing import LocalRunner


class Receipt(BaseModel):
    order_id: str
    cents: int


def test_replay_returns_recorded_results_without_running_bodies(registry, runner):
    calls: Counter[str] = Counter()

    @step
    def charge(order_id: str) -> Receipt:
        calls["charge"] += 1
        return Receipt(order_id=order_id, cents=4200)

    @task(id="t", registry=registry)
    async def flow(payload: dict, ctx: TaskContext) -> dict:
        receipt = await charge(payload["id"])
        assert isinstance(receipt, Receipt)  # replay validates back into the model
        await wait.for_(hours=2)
        await wait.for_(minutes=30)
        return {"cents": receipt.cents}

    result = runner.run(flow, {"id": "o-1"})
    assert result.ok
    assert result.output == {"cents": 4200}
    assert calls["charge"] == 1
    assert runner.invocations[result.run_id] == 3
    report = [r for r in runner.reports if r.run_id == result.run_id]
    assert [r.steps_replayed for r in report] == [0, 2, 3]


def test_sync_and_async_steps_both_work(registry, runner):
    @step
    def double(x: int) -> int:
        return x * 2

    @step
    async def add(x: int, y: int) -> int:
        return x + y

    @task(id="t", registry=registry)
    async def flow(payload: int) -> int:
        return await add(await double(payload), 1)

    assert runner.run(flow, 20).unwrap() == 41


def test_ad_hoc_ctx_step_is_journaled(registry, runner):
    calls: list[int] = []

    def fetch(n: int) -> int:
        calls.append(n)
        return n + 1

    @task(id="t", registry=registry)
    async def flow(payload: int, ctx: TaskContext) -> int:
        value = await ctx.step("fetch", fetch, payload)
        await wait.for_(hours=1)
        return value

    result = runner.run(flow, 1)
    assert result.output == 2
    assert calls == [1]
    assert [e.key for e in runner.journal(result.run_id)] == ["fetch#0", "$wait#0"]


def test_step_identity_is_name_and_occurrence(registry, runner):
    @step
    def tick(i: int) -> int:
        return i

    @task(id="t", registry=registry)
    async def flow(payload: int) -> int:
        return sum([await tick(i) for i in range(payload)])

    result = runner.run(flow, 3)
    assert [e.key for e in runner.journal(result.run_id)] == ["tick#0", "tick#1", "tick#2"]


def test_changed_code_raises_non_determinism_naming_the_step(registry):
    runner = LocalRunner(registry=registry)
    version = {"v": 1}

    @step
    def a() -> str:
        return "a"

    @step
    def b() -> str:
        return "b"

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        first = await (a() if version["v"] == 1 else b())
        await wait.for_(days=1)
        return first

    handle = runner.trigger(flow, None)
    runner.step_once()  # first invocation records a#0 and suspends
    version["v"] = 2  # "a deploy changed the task"
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("NonDeterminismError")
    assert "'a#0'" in result.error.message
    assert "'b#0'" in result.error.message


def test_non_determinism_error_names_position_and_both_steps():
    error = NonDeterminismError(3, "charge#0", "refund#0")
    assert (error.position, error.expected, error.actual) == (3, "charge#0", "refund#0")
    assert "position 3" in str(error)


def test_suspend_cannot_be_swallowed_by_except_exception(registry, runner):
    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        try:
            await wait.for_(hours=1)
        except Exception:  # noqa: BLE001 - the point of the test
            return "swallowed"
        return "resumed"

    assert not issubclass(Suspend, Exception)
    result = runner.run(flow, None)
    assert result.output == "resumed"
    assert runner.invocations[result.run_id] == 2


def test_abort_run_fails_at_once_without_retry(registry, runner):
    attempts: list[int] = []

    @step
    def check() -> None:
        attempts.append(1)
        raise AbortRun("card declined")

    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=5))
    async def flow(payload: None) -> None:
        await check()

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert attempts == [1]
    assert result.error is not None
    assert result.error.type.endswith("AbortRun")
    assert result.error.message == "card declined"


def test_retry_after_sets_the_exact_delay(registry, runner):
    state = {"n": 0}

    @step(retry=RetryPolicy(max_attempts=3))
    def limited() -> str:
        state["n"] += 1
        if state["n"] == 1:
            raise RetryAfter(42)
        return "done"

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        return await limited()

    result = runner.run(flow, None)
    assert result.output == "done"
    delays = [e.delay for e in runner.timeline(result.run_id) if e.kind == "step_retry_scheduled"]
    assert delays == [pytest.approx(42, abs=0.5)]


def test_step_failing_every_attempt_fails_the_run_with_traceback(registry, runner):
    @step(retry=RetryPolicy(max_attempts=3, randomize=False))
    def broken() -> None:
        raise ValueError("upstream 500")

    @task(id="t", registry=registry)
    async def flow(payload: None) -> None:
        await broken()

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "upstream 500" in result.error.message
    entry = runner.journal(result.run_id)[0]
    assert entry.status is EntryStatus.FAILED
    assert entry.attempts == 3
    assert entry.error is not None
    assert "ValueError: upstream 500" in entry.error.traceback
    assert "raise ValueError" in entry.error.traceback


def test_task_level_retry_replays_completed_steps(registry, runner):
    calls: Counter[str] = Counter()

    @step
    def once() -> int:
        calls["once"] += 1
        return 7

    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=3, randomize=False))
    async def flow(payload: None, ctx: TaskContext) -> int:
        value = await once()
        if ctx.attempt < 3:
            raise RuntimeError(f"flaky body, attempt {ctx.attempt}")
        return value

    result = runner.run(flow, None)
    assert result.output == 7
    assert calls["once"] == 1
    retries = [e for e in runner.timeline(result.run_id) if e.kind == "run_retry_scheduled"]
    assert [e.delay for e in retries] == [pytest.approx(1, abs=0.1), pytest.approx(2, abs=0.1)]


def test_idempotency_key_is_stable_across_attempts(registry, runner):
    seen: list[str] = []

    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=3, min_timeout=0))
    async def flow(payload: None, ctx: TaskContext) -> str:
        def send() -> str:
            seen.append(ctx.idempotency_key)
            if len(seen) < 3:
                raise ConnectionError("timeout")
            return "sent"

        return await ctx.step("send-email", send)

    result = runner.run(flow, None)
    assert result.output == "sent"
    assert len(seen) == 3
    assert len(set(seen)) == 1
    assert seen[0] == f"{result.run_id}:send-email#0"


def test_deadline_chains_a_long_loop_across_invocations(registry):
    runner = LocalRunner(registry=registry, deadline=1.0)
    calls: Counter[int] = Counter()

    @step
    def work(i: int) -> int:
        calls[i] += 1
        time.sleep(0.05)
        return i

    @task(id="t", registry=registry)
    async def flow(payload: int) -> int:
        return sum([await work(i) for i in range(payload)])

    result = runner.run(flow, 30)  # 1.5 s of work under a 1 s deadline
    assert result.output == sum(range(30))
    assert runner.invocations[result.run_id] >= 3
    assert set(calls.values()) == {1}


def test_expected_duration_suspends_before_a_step_that_cannot_fit(registry):
    runner = LocalRunner(registry=registry, deadline=10.0)

    @step(expected_duration=8)
    def big() -> str:
        return "ok"

    @step
    def small() -> str:
        time.sleep(0.1)
        return "s"

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[str]:
        return [await small(), await big()]

    # margin = min(max(10, 1), 5) = 5 s; after `small`, 9.9 s remain < 8 + 5.
    result = runner.run(flow, None)
    assert result.output == ["s", "ok"]
    assert runner.invocations[result.run_id] == 2


def test_journal_entry_key_is_name_and_occurrence():
    entry = JournalEntry(
        seq=0, name="x", occurrence=2, kind=EntryKind.STEP, status=EntryStatus.COMPLETED
    )
    assert entry.key == "x#2"


def test_a_step_result_above_the_maximum_fails_the_run_naming_the_step(registry):
    runner = LocalRunner(
        registry=registry, settings=Settings(inline_limit=1000, max_value_bytes=5000)
    )

    @step
    def big() -> str:
        return "x" * 6000

    @step
    def medium() -> str:
        return "y" * 3000  # above inline, below the maximum: stored as a blob

    @task(id="t", registry=registry)
    async def flow(payload: None) -> int:
        value = await medium()
        await wait.for_(hours=1)  # replay must read the blob back
        return len(value) + len(await big())

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    # The step itself failed (terminal: no retry), recorded, and reached the task.
    assert result.error.type.endswith("StepFailedError")
    assert (
        "step 'big#0' result is 6002 bytes, above the maximum of 5000 bytes" in result.error.message
    )
    journal = runner.journal(result.run_id)
    assert [e.key for e in journal] == ["medium#0", "$wait#0", "big#0"]
    assert journal[-1].status is EntryStatus.FAILED
    assert journal[-1].attempts == 1
    assert journal[-1].error is not None
    assert journal[-1].error.type.endswith("PayloadTooLarge")


def test_a_run_chaining_past_max_hops_fails_with_a_clear_error(registry):
    runner = LocalRunner(registry=registry, settings=Settings(max_hops=3))

    @task(id="t", registry=registry)
    async def forever(payload: None) -> None:
        for _ in range(10):
            await wait.for_(minutes=5)

    result = runner.run(forever, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("HopLimitExceeded")
    assert "above max_hops=3" in result.error.message
    assert runner.client.get_run(result.run_id).invocations == 4
