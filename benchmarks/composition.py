"""Composition figures: a ctx.map of 1,000 one-step items on the memory backend.

The child-task figures of the composition issue (fan-out of children on the
emulated stack, AWS requests per child run) come with child tasks.
"""

from __future__ import annotations

import time

from _common import emit, median_of, progress

from durable_lambda import TaskContext, step, task
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

ITEMS = 1_000
registry = TaskRegistry()


@step
def double(i: int) -> int:
    return i * 2


async def item(ctx: TaskContext, value: int, index: int) -> int:  # noqa: ARG001 - map's signature
    return await double(value)


@task(id="bench-map", registry=registry)
async def mapped(payload: int, ctx: TaskContext) -> int:
    batch = await ctx.map(range(payload), item, max_concurrency=100)
    return sum(batch.results())


@task(id="bench-steps", registry=registry)
async def sequential(payload: int) -> int:
    return sum([await double(i) for i in range(payload)])


def run_ms(definition: object) -> float:
    """Whole-run time: trigger, one invocation, 1,000 recorded steps, the batch record."""
    runner = LocalRunner(registry=registry)
    start = time.perf_counter()
    result = runner.run(definition, ITEMS)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    assert result.output == sum(range(ITEMS)) * 2, result
    return elapsed * 1e3


def main() -> None:
    progress(f"a ctx.map of {ITEMS} one-step items, memory backend (median of 7)")
    emit("map_1000_items_engine_ms", median_of(7, lambda: run_ms(mapped)), "ms", target_max=100)
    # Beside it, the same 1,000 steps awaited one after another: the map's own
    # cost is the difference (a task and a scope per item, the one batch record).
    emit(
        "sequential_1000_steps_engine_ms",
        median_of(7, lambda: run_ms(sequential)),
        "ms",
        note="same steps without map: the floor map_1000_items_engine_ms is measured against",
    )


if __name__ == "__main__":
    main()
