"""Property: with no crash, every step body runs exactly once, whatever the shape
of the task and wherever the invocations are cut."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable_lambda import RetryPolicy, step, task, wait
from durable_lambda.records import ResumeMessage
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner
from durable_lambda.worker import Invocation

ops = st.one_of(
    st.tuples(st.just("step"), st.booleans()),  # (kind, is_async)
    st.tuples(st.just("wait_short"), st.floats(min_value=0, max_value=0.5)),
    st.tuples(st.just("wait_long"), st.integers(min_value=2, max_value=20_000)),
    st.tuples(st.just("flaky"), st.integers(min_value=1, max_value=2)),  # failures before success
    st.tuples(st.just("gather"), st.integers(min_value=2, max_value=4)),
)


def build(shape: list[tuple[str, Any]], ledger: Counter[str], registry: TaskRegistry):
    failures: Counter[str] = Counter()

    @step
    def sync_body(key: str) -> str:
        ledger[key] += 1
        return key

    @step
    async def async_body(key: str) -> str:
        ledger[key] += 1
        await asyncio.sleep(0)
        return key

    @step(retry=RetryPolicy(max_attempts=3, min_timeout=0.5, randomize=False))
    def flaky_body(key: str, fail_times: int) -> str:
        ledger[key] += 1
        if failures[key] < fail_times:
            failures[key] += 1
            raise ConnectionError(f"{key} attempt {failures[key]}")
        return key

    @task(id="shape", registry=registry)
    async def shaped(payload: None) -> list[str]:
        out: list[str] = []
        for i, (kind, arg) in enumerate(shape):
            key = f"{i}"
            if kind == "step":
                out.append(await (async_body(key) if arg else sync_body(key)))
            elif kind in {"wait_short", "wait_long"}:
                await wait.for_(seconds=arg)
            elif kind == "flaky":
                out.append(await flaky_body(key, arg))
            else:
                out.extend(await asyncio.gather(*(async_body(f"{i}.{j}") for j in range(arg))))
        return out

    return shaped


def expected_calls(shape: list[tuple[str, Any]]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for i, (kind, arg) in enumerate(shape):
        if kind == "step":
            calls[f"{i}"] = 1
        elif kind == "flaky":
            calls[f"{i}"] = arg + 1
        elif kind == "gather":
            for j in range(arg):
                calls[f"{i}.{j}"] = 1
    return calls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(ops, min_size=1, max_size=12),
    cut_seed=st.integers(min_value=0, max_value=2**32 - 1),
    cut_rate=st.floats(min_value=0.0, max_value=0.6),
)
def test_each_step_body_runs_once_across_random_suspensions(shape, cut_seed, cut_rate):
    registry = TaskRegistry()
    ledger: Counter[str] = Counter()
    shaped = build(shape, ledger, registry)
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
            timers = runner.store.due_timers(
                runner.clock.now() + __import__("datetime").timedelta(days=1)
            )
            if not timers:
                break
            runner.clock.advance_to(timers[0].wake_at)
            runner.scheduler.tick()
            continue
        runner.clock.advance_to(due)
        for message in runner.queue.receive(runner.clock.now()):
            runner.worker.handle(
                ResumeMessage(message.run_id, message.epoch),
                Invocation(request_id=f"r{n}", remaining=remaining, timeout=900.0),
            )
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.ok, result.error
    assert ledger == expected_calls(shape)
    produced = [
        k
        for i, (kind, arg) in enumerate(shape)
        for k in (
            [f"{i}"]
            if kind in {"step", "flaky"}
            else [f"{i}.{j}" for j in range(arg)]
            if kind == "gather"
            else []
        )
    ]
    assert result.output == produced
