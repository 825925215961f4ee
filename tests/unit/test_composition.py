"""Work inside one run: ctx.parallel, ctx.map and child contexts."""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter

import pytest
from pydantic import BaseModel

from durable_lambda import (
    BatchFailedError,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    ConfigurationError,
    ItemStatus,
    RetryPolicy,
    RunStatus,
    Settings,
    StepFailedError,
    TaskContext,
    step,
    task,
    wait,
)
from durable_lambda.engine.journal import EntryKind
from durable_lambda.testing import LocalRunner


class Page(BaseModel):
    number: int
    words: int


def test_parallel_returns_results_in_index_order_whatever_finishes_first(registry, runner):
    async def slow(ctx: TaskContext) -> str:
        return await ctx.step("fetch", _sleepy, "slow", 0.03)

    async def fast(ctx: TaskContext) -> str:
        return await ctx.step("fetch", _sleepy, "fast", 0.0)

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[str]:
        batch = await ctx.parallel([slow, fast], name="enrich")
        await wait.for_(minutes=5)
        return batch.results()

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == ["slow", "fast"]
    journal = runner.journal(result.run_id)
    assert sorted((e.scope, e.key) for e in journal if e.kind is EntryKind.STEP) == [
        ("enrich#0/0", "enrich#0/0/fetch#0"),
        ("enrich#0/1", "enrich#0/1/fetch#0"),
    ]
    assert [e.key for e in journal if e.kind is EntryKind.BATCH] == ["enrich#0"]


async def _sleepy(label: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return label


def test_parallel_takes_a_dict_of_named_branches(registry, runner):
    async def a(ctx: TaskContext) -> int:
        return 1

    async def b(ctx: TaskContext) -> int:
        raise ValueError("b is broken")

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> dict:
        batch = await ctx.parallel({"alpha": a, "beta": b})
        with pytest.raises(BatchFailedError, match="beta"):
            batch.throw_if_error()
        return {
            "names": [i.name for i in batch.items],
            "statuses": [i.status.value for i in batch.items],
            "errors": [e.message for e in batch.errors()],
            "has_failure": batch.has_failure,
            "reason": batch.completion_reason.value,
        }

    result = runner.run(flow, None)
    assert result.output == {
        "names": ["alpha", "beta"],
        "statuses": ["SUCCEEDED", "FAILED"],
        "errors": ["b is broken"],
        "has_failure": True,
        "reason": "ALL_COMPLETED",
    }


def test_an_empty_batch_returns_at_once_and_a_bad_limit_is_refused(registry, runner):
    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> str:
        empty = await ctx.map([], _double)
        assert empty.items == ()
        assert empty.completion_reason is CompletionReason.ALL_COMPLETED
        with pytest.raises(ConfigurationError, match="max_concurrency must be >= 1"):
            await ctx.map([1], _double, max_concurrency=0)
        return "ok"

    result = runner.run(flow, None)
    assert result.output == "ok", result.error
    assert runner.journal(result.run_id) == []


def test_a_branch_that_is_not_a_function_is_refused_at_the_call(registry, runner):
    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> str:
        with pytest.raises(ConfigurationError, match=r"map: fn must be an async .* got NoneType"):
            await ctx.map([1, 2], None)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"parallel: branch 'b' must be .* got int"):
            await ctx.parallel({"a": _double_one, "b": 5})  # type: ignore[dict-item]
        return "ok"

    result = runner.run(flow, None)
    assert result.output == "ok", result.error
    assert runner.journal(result.run_id) == []  # nothing journaled, nothing ran


async def _double_one(ctx: TaskContext) -> int:
    return await ctx.step("double", lambda: 2)


async def _double(ctx: TaskContext, item: int, index: int) -> int:
    return await ctx.step("double", lambda x: x * 2, item)


def test_map_honours_max_concurrency(registry, runner):
    running = Counter[str]()

    async def work(ctx: TaskContext, item: int, index: int) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await ctx.step("work", _sleepy, str(item), 0.005)
        running["now"] -= 1
        return item

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[int]:
        return (await ctx.map(range(12), work, max_concurrency=3)).results()

    result = runner.run(flow, None)
    assert result.output == list(range(12))
    assert running["peak"] == 3


@pytest.mark.parametrize(
    ("completion", "started", "reason"),
    [
        (
            CompletionConfig(tolerated_failure_count=0),
            1,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
        ),
        (CompletionConfig(min_successful=2), 4, CompletionReason.MIN_SUCCESSFUL_REACHED),
        (CompletionConfig(tolerated_failure_percentage=50), 6, CompletionReason.ALL_COMPLETED),
        (
            CompletionConfig(tolerated_failure_percentage=49),
            5,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
        ),
    ],
)
def test_completion_policies_stop_early_and_never_start_the_rest(
    registry, runner, completion, started, reason
):
    ran: list[int] = []

    async def item(ctx: TaskContext, fails: bool, index: int) -> int:  # noqa: FBT001 - map signature
        ran.append(index)
        if fails:
            raise RuntimeError(f"item {index}")
        return index

    # Items 0, 2 and 4 fail: 3 of 6 is exactly 50%.
    inputs = [True, False, True, False, True, False]

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> dict:
        batch = await ctx.map(inputs, item, max_concurrency=1, completion=completion)
        return {
            "reason": batch.completion_reason.value,
            "not_started": [i.index for i in batch.items if i.status is ItemStatus.NOT_STARTED],
        }

    result = runner.run(flow, None)
    assert result.output == {
        "reason": reason.value,
        "not_started": list(range(started, 6)),
    }
    assert ran == list(range(started))


def test_early_completion_lets_a_step_in_flight_finish_and_record(registry, runner):
    bodies = Counter[str]()

    async def quick(ctx: TaskContext) -> str:
        return await ctx.step("quick", _counted(bodies, "quick", 0.0))

    async def slow(ctx: TaskContext) -> str:
        first = await ctx.step("slow", _counted(bodies, "slow", 0.02))
        await ctx.step("after", _counted(bodies, "after", 0.0))  # never starts
        return first

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[str]:
        batch = await ctx.parallel([quick, slow], completion=CompletionConfig(min_successful=1))
        await wait.for_(minutes=1)
        return [i.status.value for i in batch.items]

    result = runner.run(flow, None)
    assert result.output == ["SUCCEEDED", "NOT_STARTED"], result.error
    assert bodies == {"quick": 1, "slow": 1}
    keys = {e.key for e in runner.journal(result.run_id)}
    assert "parallel#0/1/slow#0" in keys  # recorded, not cut in half


def _counted(bodies: Counter[str], label: str, delay: float):
    async def body() -> str:
        bodies[label] += 1
        await asyncio.sleep(delay)
        return label

    return body


def test_branches_that_wait_suspend_the_run_and_replay_skips_finished_work(registry, runner):
    bodies = Counter[str]()

    async def waits(ctx: TaskContext) -> str:
        await ctx.step("before", _counted(bodies, "before", 0.0))
        await wait.for_(hours=2)
        return await ctx.step("after", _counted(bodies, "after", 0.0))

    async def retries(ctx: TaskContext) -> str:
        return await ctx.step("flaky", _flaky(bodies), retry=RetryPolicy(max_attempts=3))

    async def nested(ctx: TaskContext) -> list[str]:
        inner = await ctx.parallel([waits, retries], name="inner")
        return [str(r) for r in inner.results()]

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[object]:
        outer = await ctx.parallel([nested, retries], name="outer")
        return outer.results()

    result = runner.run(flow, None)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.output == [["after", "ok"], "ok"]
    assert bodies["before"] == 1
    assert bodies["after"] == 1
    assert runner.invocations[result.run_id] >= 3


def _flaky(bodies: Counter[str]):
    def body() -> str:
        bodies["flaky"] += 1
        if bodies["flaky"] % 2 == 1:
            raise ConnectionError("first try fails")
        return "ok"

    return body


def test_map_results_round_trip_through_their_annotation_on_replay(registry, runner):
    async def page(ctx: TaskContext, number: int, index: int) -> Page:
        return Page(number=number, words=number * 100)

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> int:
        batch = await ctx.map([1, 2, 3], page, item_name=lambda n, _i: f"page-{n}")
        await wait.for_(minutes=5)
        assert all(isinstance(p, Page) for p in batch.results())
        assert [i.name for i in batch.items] == ["page-1", "page-2", "page-3"]
        return sum(p.words for p in batch.results())

    result = runner.run(flow, None)
    assert result.output == 600, result.error


def test_a_large_map_result_goes_to_a_blob_and_replays_from_one_record(registry):
    runner = LocalRunner(registry=registry, settings=Settings(inline_limit=64_000))
    calls = Counter[str]()

    async def kilobyte(ctx: TaskContext, item: int, index: int) -> str:
        calls["body"] += 1
        return "x" * 1000

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> int:
        batch = await ctx.map(range(2000), kilobyte, max_concurrency=50)
        await wait.for_(minutes=5)
        return len(batch.results())

    result = runner.run(flow, None)
    assert result.output == 2000, result.error
    assert calls["body"] == 2000  # the replay did not run a single branch again
    replay = [r for r in runner.reports if r.run_id == result.run_id][-1]
    assert replay.steps_replayed == 2  # the map's one record, and the wait
    assert runner.store.values.blobs.blobs  # type: ignore[attr-defined]


def test_a_child_context_replays_from_its_record_without_entering(registry, runner):
    entered = Counter[str]()

    async def checkout(ctx: TaskContext, order: str) -> dict:
        entered["checkout"] += 1
        charged = await ctx.step("charge", lambda: 42)
        return {"order": order, "charged": charged}

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> dict:
        value = await ctx.run_in_child_context(checkout, "o-1", name="checkout")
        await wait.for_(minutes=5)
        return value

    result = runner.run(flow, None)
    assert result.output == {"order": "o-1", "charged": 42}
    assert entered["checkout"] == 1
    keys = [e.key for e in runner.journal(result.run_id)]
    assert "checkout#0/charge#0" in keys
    assert "checkout#0" in keys


def test_a_child_context_cut_by_a_suspension_re_enters_and_replays(registry, runner):
    bodies = Counter[str]()

    async def inner(ctx: TaskContext) -> str:
        return await ctx.step("inner", _counted(bodies, "inner", 0.0))

    async def block(ctx: TaskContext) -> list[str]:
        first = await ctx.step("one", _counted(bodies, "one", 0.0))
        await wait.for_(hours=1)
        nested = await ctx.run_in_child_context(inner, name="nested")
        flaky = await ctx.step("flaky", _flaky(bodies), retry=RetryPolicy(max_attempts=2))
        return [first, nested, flaky]

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[str]:
        return await ctx.run_in_child_context(block, name="block")

    result = runner.run(flow, None)
    assert result.output == ["one", "inner", "ok"], result.error
    assert bodies == {"one": 1, "inner": 1, "flaky": 2}
    assert "block#0/nested#0/inner#0" in {e.key for e in runner.journal(result.run_id)}


def test_an_error_inside_a_child_context_reaches_the_caller(registry, runner):
    @step(retry=RetryPolicy(max_attempts=1))
    def broken() -> None:
        raise ValueError("no stock")

    async def block(ctx: TaskContext) -> None:
        await broken()

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> str:
        try:
            await ctx.run_in_child_context(block)
        except StepFailedError as exc:
            await wait.for_(minutes=1)  # replay raises it again, from the record
            return exc.step
        return "no error"

    result = runner.run(flow, None)
    assert result.output == "block#0/broken#0", result.error


def test_idempotency_keys_inside_branches_are_stable_and_unique(registry, runner):
    keys: list[str] = []

    def remember(ctx: TaskContext):
        def body() -> str:
            keys.append(ctx.idempotency_key)
            return ctx.idempotency_key

        return body

    async def branch(ctx: TaskContext, item: int, index: int) -> str:
        return await ctx.step("charge", remember(ctx))

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[str]:
        first = await ctx.map([1, 2, 3], branch)
        await wait.for_(minutes=1)
        return first.results()

    result = runner.run(flow, None)
    assert result.output == keys
    assert len(set(keys)) == 3
    assert keys[0] == f"{result.run_id}:map#0/0/charge#0"


def test_batch_result_helpers():
    batch: BatchResult[int] = BatchResult.from_json(
        {
            "reason": "MIN_SUCCESSFUL_REACHED",
            "items": [
                {"index": 0, "name": "0", "status": "SUCCEEDED", "result": 5, "error": None},
                {"index": 1, "name": "1", "status": "NOT_STARTED", "result": None, "error": None},
            ],
        }
    )
    assert batch.results() == [5]
    assert [i.index for i in batch.succeeded()] == [0]
    assert batch.failed() == []
    assert not batch.has_failure
    assert batch.throw_if_error() is batch
    assert BatchResult.from_json(batch.to_json()) == batch


@pytest.mark.parametrize(
    "bad",
    [
        {"min_successful": 0},
        {"tolerated_failure_count": -1},
        {"tolerated_failure_percentage": 101},
    ],
)
def test_completion_config_rejects_meaningless_values(bad):
    with pytest.raises(ConfigurationError):
        CompletionConfig(**bad)


def test_a_batch_complete_early_does_not_wait_for_a_cut_branchs_wait(registry, runner):
    async def quick(ctx: TaskContext) -> str:
        await asyncio.sleep(0.01)  # the other branch reaches its wait first
        return "quick"

    async def sleeper(ctx: TaskContext) -> str:
        await wait.for_(days=3)
        return "late"

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[str]:
        batch = await ctx.parallel([quick, sleeper], completion=CompletionConfig(min_successful=1))
        return [i.status.value for i in batch.items]

    result = runner.run(flow, None)
    assert result.output == ["SUCCEEDED", "NOT_STARTED"], result.error
    assert runner.invocations[result.run_id] == 1  # no three-day suspension for a cut branch


_label: contextvars.ContextVar[str] = contextvars.ContextVar("label", default="unset")


def test_map_items_keep_their_own_context_and_scope_numbering(registry, runner):
    seen: list[str] = []

    async def item(ctx: TaskContext, value: int, index: int) -> int:
        seen.append(_label.get())  # an earlier item's setting must not show here
        _label.set(f"item {index}")
        doubled = await asyncio.gather(ctx.step("a", lambda: value), ctx.step("b", lambda: value))
        return sum(doubled)

    @task(id="t", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[int]:
        batch = await ctx.map([1, 2, 3], item, name="items", max_concurrency=1)
        (after,) = await asyncio.gather(ctx.step("after", lambda: 0))
        return [*batch.results(), after]

    result = runner.run(flow, None)
    assert result.output == [2, 4, 6, 0]
    assert seen == ["unset"] * 3
    assert _label.get() == "unset"
    keys = [e.key for e in runner.journal(result.run_id) if e.kind is EntryKind.STEP]
    # Tasks inside an item number from its scope; the batch took no number of the
    # caller's, so the body's first task after it is still t0.
    assert sorted(keys) == sorted(
        [f"items#0/{i}/t{t}/{name}#0" for i in range(3) for t, name in enumerate("ab")]
        + ["t0/after#0"]
    )
