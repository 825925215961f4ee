"""``@step`` functions: plain calls outside a task, journaled awaitables inside one."""

from __future__ import annotations

import asyncio
import inspect

from durable_lambda import step, task


@step
def add(a: int, b: int) -> int:
    return a + b


@step
async def double(n: int) -> int:
    await asyncio.sleep(0)
    return 2 * n


def test_a_sync_step_outside_a_task_is_a_plain_call():
    assert add(1, 2) == 3


def test_an_async_step_outside_a_task_returns_an_awaitable():
    pending = double(4)
    assert inspect.isawaitable(pending)
    assert asyncio.run(pending) == 8  # type: ignore[arg-type]


def test_sync_and_async_steps_are_awaited_and_journaled_inside_a_task(registry, runner):
    @task(id="both", registry=registry)
    async def both(payload: int) -> int:
        return await double(await add(payload, 1))

    result = runner.run(both, 2)
    assert result.output == 6
    assert [(e.key, e.result) for e in runner.journal(result.run_id)] == [
        ("add#0", "3"),
        ("double#0", "6"),
    ]
