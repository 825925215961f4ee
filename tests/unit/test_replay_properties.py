"""Property: with no crash, every step body runs exactly once, whatever the shape
of the task and wherever the invocations are cut.

Shapes mix steps, waits, retries, gathers, parallel batches, maps, child
contexts and child tasks (one, or a batch, each child a one-step run of its
own that the parent waits on); the deadline is reported reached at random
in every invocation, parents' and children's alike."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable_lambda import RetryPolicy, TaskContext, step, task, wait
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner
from durable_lambda.worker import Invocation

leaves = st.one_of(
    st.tuples(st.just("step"), st.booleans()),  # (kind, is_async)
    st.tuples(st.just("wait_short"), st.floats(min_value=0, max_value=0.5)),
    st.tuples(st.just("wait_long"), st.integers(min_value=2, max_value=20_000)),
    st.tuples(st.just("flaky"), st.integers(min_value=1, max_value=2)),  # failures before success
    st.tuples(st.just("swallow"), st.booleans()),  # a step inside a bare `except BaseException`
    st.tuples(st.just("child"), st.integers(min_value=1, max_value=3)),  # children of one call
)
# Gathers, parallel batches and child contexts of multi-node branches, nested:
# each branch is its own scope.
nodes = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(
            st.sampled_from(["gather", "parallel"]),
            st.lists(st.lists(inner, min_size=1, max_size=3), min_size=2, max_size=3),
        ),
        st.tuples(st.just("context"), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("map"), st.integers(min_value=0, max_value=4)),
    ),
    max_leaves=14,
)
ops = nodes


class ShapeRunner:
    """Runs a tree of nodes as a task body, counting every step body it executes."""

    def __init__(self, ledger: Counter[str], swallowed: list[str]) -> None:
        self.ledger = ledger
        self.swallowed = swallowed
        self.failures: Counter[str] = Counter()

        @step
        def sync_body(key: str) -> str:
            ledger[key] += 1
            return key

        @step
        async def async_body(key: str) -> str:
            ledger[key] += 1
            for _ in range(sum(map(ord, key)) % 3):  # branches finish in varied orders
                await asyncio.sleep(0)
            return key

        @step(retry=RetryPolicy(max_attempts=3, min_timeout=0.5, randomize=False))
        def flaky_body(key: str, fail_times: int) -> str:
            ledger[key] += 1
            if self.failures[key] < fail_times:
                self.failures[key] += 1
                raise ConnectionError(f"{key} attempt {self.failures[key]}")
            return key

        self.sync_body = sync_body
        self.async_body = async_body
        self.flaky_body = flaky_body
        self.child: Any = None  # the child task, set by ``build``

    async def leaf(self, kind: str, arg: Any, key: str) -> list[str]:
        body = self.async_body if arg else self.sync_body
        if kind == "step":
            return [await body(key)]
        if kind == "flaky":
            return [await self.flaky_body(key, arg)]
        if kind == "child":
            return await self.children(arg, key)
        if kind == "swallow":
            try:
                return [await body(key)]
            except BaseException:  # noqa: BLE001 - the user mistake under test
                self.swallowed.append(key)
                return ["swallowed"]
        await wait.for_(seconds=arg)
        return []

    async def children(self, count: int, key: str) -> list[str]:
        """One child (``trigger_and_wait``) or a batch of them, each a one-step run."""
        if count == 1:
            return [(await self.child.trigger_and_wait(key)).unwrap()]
        results = await self.child.batch_trigger_and_wait([f"{key}.{j}" for j in range(count)])
        return [result.unwrap() for result in results]

    async def nodes(
        self, ctx: TaskContext, nodes_: list[tuple[str, Any]], prefix: str = ""
    ) -> list[str]:
        out: list[str] = []
        for i, (kind, arg) in enumerate(nodes_):
            key = f"{prefix}{i}"
            if kind == "gather":
                branches = [self.nodes(ctx, b, f"{key}.{j}.") for j, b in enumerate(arg)]
                for part in await asyncio.gather(*branches):
                    out.extend(part)
            elif kind == "parallel":
                batch = await ctx.parallel(
                    [self.branch(b, f"{key}.{j}.") for j, b in enumerate(arg)],
                    max_concurrency=1 + len(key) % 2,
                )
                assert batch.completion_reason.value == "ALL_COMPLETED", batch
                for part in batch.results():
                    out.extend(part)
            elif kind == "context":
                out.extend(await ctx.run_in_child_context(self.nodes, arg, f"{key}.0."))
            elif kind == "map":
                batch = await ctx.map(range(arg), self.map_item(key))
                out.extend(batch.throw_if_error().results())
            else:
                out.extend(await self.leaf(kind, arg, key))
        return out

    def branch(self, nodes_: list[tuple[str, Any]], prefix: str):
        async def run(ctx: TaskContext) -> list[str]:
            return await self.nodes(ctx, nodes_, prefix)

        return run

    def map_item(self, key: str):
        async def run(ctx: TaskContext, item: int, index: int) -> str:
            return await self.async_body(f"{key}.{index}")

        return run


def build(
    shape: list[tuple[str, Any]],
    ledger: Counter[str],
    registry: TaskRegistry,
    swallowed: list[str],
):
    shapes = ShapeRunner(ledger, swallowed)

    @task(id="shape-child", registry=registry)
    async def child(payload: str) -> str:
        return await shapes.sync_body(payload)  # type: ignore[no-any-return]

    shapes.child = child

    @task(id="shape", registry=registry)
    async def shaped(payload: None, ctx: TaskContext) -> list[str]:
        return await shapes.nodes(ctx, shape)

    return shaped


def expected_calls(shape: list[tuple[str, Any]], prefix: str = "") -> Counter[str]:
    calls: Counter[str] = Counter()
    for i, (kind, arg) in enumerate(shape):
        key = f"{prefix}{i}"
        if kind in {"step", "swallow"} or (kind == "child" and arg == 1):
            calls[key] = 1
        elif kind == "child":
            calls.update({f"{key}.{j}": 1 for j in range(arg)})
        elif kind == "flaky":
            calls[key] = arg + 1
        elif kind in {"gather", "parallel"}:
            for j, branch in enumerate(arg):
                calls.update(expected_calls(branch, f"{key}.{j}."))
        elif kind == "context":
            calls.update(expected_calls(arg, f"{key}.0."))
        elif kind == "map":
            calls.update({f"{key}.{j}": 1 for j in range(arg)})
    return calls


def expected_output(shape: list[tuple[str, Any]], prefix: str = "") -> list[str]:
    out: list[str] = []
    for i, (kind, arg) in enumerate(shape):
        key = f"{prefix}{i}"
        if kind in {"step", "flaky", "swallow"} or (kind == "child" and arg == 1):
            out.append(key)
        elif kind == "child":
            out.extend(f"{key}.{j}" for j in range(arg))
        elif kind in {"gather", "parallel"}:
            for j, branch in enumerate(arg):
                out.extend(expected_output(branch, f"{key}.{j}."))
        elif kind == "context":
            out.extend(expected_output(arg, f"{key}.0."))
        elif kind == "map":
            out.extend(f"{key}.{j}" for j in range(arg))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(ops, min_size=1, max_size=12),
    cut_seed=st.integers(min_value=0, max_value=2**32 - 1),
    cut_rate=st.floats(min_value=0.0, max_value=0.6),
)
def test_each_step_body_runs_once_across_random_suspensions(shape, cut_seed, cut_rate):
    registry = TaskRegistry()
    ledger: Counter[str] = Counter()
    swallowed: list[str] = []
    shaped = build(shape, ledger, registry, swallowed)
    runner = LocalRunner(registry=registry, rng=random.Random(0))
    cuts = random.Random(cut_seed)

    def remaining() -> float:
        # Randomly report the deadline as reached: the engine must checkpoint
        # and continue in a new invocation.
        return 0.0 if cuts.random() < cut_rate else 900.0

    handle = runner.trigger(shaped, None)
    for n in range(10_000):
        due = runner.queue.next_due()
        if due is None:
            timers = runner.store.due_timers(runner.clock.now() + dt.timedelta(days=1))
            if not timers:
                break
            runner.clock.advance_to(timers[0].wake_at)
            runner.scheduler.tick()
            continue
        runner.clock.advance_to(due)
        for message in runner.queue.receive(runner.clock.now()):
            runner.worker.handle(
                message,
                Invocation(request_id=f"r{n}", remaining=remaining, timeout=900.0),
            )
    result = runner.client.result(handle.run_id)
    assert result is not None
    # No body ever runs more often than its attempts, swallowed signal or not.
    assert all(ledger[key] <= count for key, count in expected_calls(shape).items())
    assert set(ledger) <= set(expected_calls(shape))
    if not result.ok:
        # Only user code catching the runtime's signal may stop a run here, and
        # then the run says so instead of completing with what it computed after.
        assert swallowed
        assert result.error is not None
        assert result.error.type.endswith("SuspendSwallowedError"), result.error
        return
    # Completed (a swallowed signal is harmless when the invocation still ended
    # as a suspension): every body ran exactly once, and replay put every
    # recorded result back in its place.
    assert ledger == expected_calls(shape)
    assert result.output == expected_output(shape)
