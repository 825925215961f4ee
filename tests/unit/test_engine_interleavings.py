"""The engine under interleavings: parallel branches, siblings that suspend, swallowed signals.

Each test forces the interleaving that broke a guarantee before (branches that
finish in another order than they replay, a sibling that suspends while a step
body runs, user code that catches the runtime's signals) and asserts what the
run recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from durable_lambda import RetryPolicy, RunStatus, Settings, TaskContext, step, task, wait
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.testing import LocalRunner


def _keys(runner: LocalRunner, run_id: str) -> list[str]:
    return sorted(e.key for e in runner.journal(run_id))


def test_gather_branches_with_the_same_step_name_replay_their_own_results(registry, runner):
    calls: Counter[str] = Counter()

    @step
    async def fetch(label: str, delay: float) -> str:
        calls[label] += 1
        await asyncio.sleep(delay)  # B's steps finish before A's: live order differs
        return label

    async def branch(prefix: str, delay: float) -> list[str]:
        return [await fetch(f"{prefix}1", delay), await fetch(f"{prefix}2", delay)]

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[list[str]]:
        result = await asyncio.gather(branch("a", 0.02), branch("b", 0.0))
        await wait.for_(minutes=5)  # a second invocation replays both branches
        return list(result)

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == [["a1", "a2"], ["b1", "b2"]]
    assert runner.invocations[result.run_id] == 2
    assert set(calls.values()) == {1}
    assert _keys(runner, result.run_id) == [
        "$wait#0",
        "t0/fetch#0",
        "t0/fetch#1",
        "t1/fetch#0",
        "t1/fetch#1",
    ]


def test_gather_branches_with_different_step_names_replay_without_non_determinism(registry, runner):
    @step
    async def left(i: int) -> str:
        await asyncio.sleep(0.01 * (2 - i))
        return f"l{i}"

    @step
    async def right(i: int) -> str:
        return f"r{i}"

    async def lefts() -> list[str]:
        return [await left(0), await left(1)]

    async def rights() -> list[str]:
        return [await right(0), await right(1)]

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[list[str]]:
        result = list(await asyncio.gather(lefts(), rights()))
        await wait.for_(minutes=5)
        return result

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == [["l0", "l1"], ["r0", "r1"]]


def test_nested_gathers_and_create_task_get_stable_scopes_and_unique_idempotency_keys(
    registry, runner
):
    keys: list[str] = []

    @step
    async def work(label: str, ctx_key: str = "") -> str:
        await asyncio.sleep(0)
        return label

    async def leaf(label: str, ctx: TaskContext) -> str:
        async def inner() -> str:
            return await ctx.step("work", _record_key(keys, ctx), label)

        return await asyncio.create_task(inner())

    async def branch(prefix: str, ctx: TaskContext) -> list[str]:
        return list(await asyncio.gather(leaf(f"{prefix}x", ctx), leaf(f"{prefix}y", ctx)))

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[list[str]]:
        first = list(await asyncio.gather(branch("a", ctx), branch("b", ctx)))
        await wait.for_(minutes=1)
        again = list(await asyncio.gather(branch("a", ctx), branch("b", ctx)))
        assert again == first
        return first

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == [["ax", "ay"], ["bx", "by"]]
    assert len(keys) == len(set(keys)) == 8  # 4 leaves x 2 gathers, each its own step
    assert all(k.startswith(f"{result.run_id}:t") for k in keys)


def _record_key(keys: list[str], ctx: TaskContext):
    def body(label: str) -> str:
        keys.append(ctx.idempotency_key)
        return label

    return body


def test_a_sibling_step_started_as_another_branch_waits_runs_once(registry, runner):
    sent: Counter[str] = Counter()

    @step
    async def send_email(to: str) -> str:
        sent[to] += 1  # the side effect happens, then the body awaits
        await asyncio.sleep(0.01)
        return f"sent to {to}"

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        _, receipt = await asyncio.gather(wait.for_(minutes=5), send_email("a@b.c"))
        return receipt

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == "sent to a@b.c"
    assert sent == {"a@b.c": 1}


def test_a_sibling_step_runs_once_when_another_step_schedules_a_retry(registry, runner):
    charged: Counter[str] = Counter()
    flaky_calls: Counter[str] = Counter()

    @step(retry=RetryPolicy(max_attempts=3, min_timeout=1, randomize=False))
    async def flaky() -> str:
        flaky_calls["n"] += 1
        if flaky_calls["n"] == 1:
            raise RuntimeError("first try fails")
        return "ok"

    @step
    async def charge() -> int:
        charged["n"] += 1
        await asyncio.sleep(0.01)
        return 42

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[object]:
        return list(await asyncio.gather(flaky(), charge()))

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == ["ok", 42]
    assert charged["n"] == 1
    assert flaky_calls["n"] == 2


def test_a_task_group_sibling_is_not_cut_in_half_by_a_suspension(registry, runner):
    finished: Counter[str] = Counter()

    @step
    async def upload() -> str:
        finished["started"] += 1
        await asyncio.sleep(0.01)
        finished["finished"] += 1
        return "uploaded"

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        async with asyncio.TaskGroup() as group:
            group.create_task(wait.for_(minutes=5))
            upload_task = group.create_task(upload())
        return upload_task.result()

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == "uploaded"
    assert finished == {"started": 1, "finished": 1}


def test_a_bare_except_around_a_wait_fails_the_run_instead_of_completing_it(registry, runner):
    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        try:
            await wait.for_(hours=1)
        except:  # noqa: E722 - the user mistake under test
            return "skipped the wait"
        return "waited"

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("SuspendSwallowedError")
    assert "bare `except:`" in result.error.message
    assert "$wait#0" in result.error.message


def test_swallowing_steps_in_a_loop_never_reports_a_partial_result(registry):
    runner = LocalRunner(registry=registry, deadline=0.4)
    ran: Counter[int] = Counter()

    @step
    def item(i: int) -> int:
        ran[i] += 1
        time.sleep(0.05)
        return i

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        failed = 0
        for i in range(30):
            try:
                await item(i)
            except BaseException:  # noqa: BLE001 - the user mistake under test
                failed += 1
        return f"{failed} of 30 items failed"

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("SuspendSwallowedError")
    assert set(ran.values()) == {1}  # no body ran twice, none ran after the stop
    assert len(ran) < 30


def test_re_raising_the_signal_after_cleanup_suspends_normally(registry, runner):
    cleanups: list[str] = []

    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        try:
            await wait.for_(hours=1)
        except BaseException:
            cleanups.append("cleanup")
            raise
        return "done"

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == "done"
    assert cleanups == ["cleanup"]


def test_raising_another_error_while_handling_the_signal_is_a_swallow(registry, runner):
    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=3))
    async def flow(payload: None) -> str:
        try:
            await wait.for_(hours=1)
        except BaseException as exc:
            raise RuntimeError("wrapped") from exc
        return "done"

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("SuspendSwallowedError")
    assert runner.client.get_run(result.run_id).attempt == 1  # terminal: no retry


def test_a_genuine_error_of_one_branch_while_another_waits_follows_the_retry_policy(
    registry, runner
):
    @step(retry=RetryPolicy(max_attempts=1))
    def broken() -> None:
        raise ValueError("boom")

    @task(id="t", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def flow(payload: None) -> None:
        await asyncio.gather(broken(), wait.for_(hours=1))

    result = runner.run(flow, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("StepFailedError")


def test_elapsed_waits_are_recorded_completed(registry, runner):
    @task(id="t", registry=registry)
    async def flow(payload: None) -> str:
        await wait.for_(hours=1)
        await wait.for_(minutes=20)
        return "ok"

    result = runner.run(flow, None)
    assert result.ok
    journal = runner.journal(result.run_id)
    assert [(e.key, e.status) for e in journal] == [
        ("$wait#0", EntryStatus.COMPLETED),
        ("$wait#1", EntryStatus.COMPLETED),
    ]
    assert all(e.ended_at is not None and e.wake_at is not None for e in journal)
    assert all(e.ended_at >= e.wake_at for e in journal)  # type: ignore[operator]


@pytest.mark.parametrize("label", ["first", "second"])
def test_steps_started_in_parallel_after_a_deadline_suspend_run_once(registry, label):
    runner = LocalRunner(registry=registry, deadline=0.4, settings=Settings())
    ran: Counter[str] = Counter()

    @step
    async def slow(name: str) -> str:
        ran[name] += 1
        await asyncio.sleep(0.06)
        return name

    async def chain(prefix: str) -> list[str]:
        return [await slow(f"{prefix}{i}") for i in range(6)]

    @task(id="t", registry=registry)
    async def flow(payload: None) -> list[list[str]]:
        return list(await asyncio.gather(chain(label), chain(label.upper())))

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert runner.invocations[result.run_id] >= 2  # the deadline forced hops
    assert set(ran.values()) == {1}
    assert len(ran) == 12
