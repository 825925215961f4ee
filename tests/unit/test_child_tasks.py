"""Child tasks: journaled triggers, waits that suspend the parent, results as values."""

from __future__ import annotations

import json
from collections import Counter

from pydantic import BaseModel

from durable_lambda import AbortRun, Queue, RetryPolicy, TaskContext, step, task, wait
from durable_lambda.engine.journal import EntryKind, EntryStatus
from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage, RunQuery
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import PayloadValidationError
from durable_lambda.result import RunFailedError, RunResult
from durable_lambda.settings import Settings
from durable_lambda.testing import LocalRunner


class Order(BaseModel):
    order_id: str


def _children_of(runner: LocalRunner, run_id: str) -> list[str]:
    """The child run ids the parent's journal names."""
    ids: list[str] = []
    for entry in runner.journal(run_id):
        if entry.kind in (EntryKind.CHILD, EntryKind.CHILD_WAIT):
            ids += json.loads(entry.result or "{}")["runs"]
    return ids


def test_trigger_inside_a_task_is_journaled_and_links_both_runs(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: Order) -> str:
        return payload.order_id

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> str:
        handle = child.trigger({"order_id": "o-1"})
        await wait.for_(seconds=30)  # a replay: the trigger must not run again
        return handle.run_id

    result = runner.run(parent, None)
    assert result.ok
    child_id = result.output
    assert _children_of(runner, result.run_id) == [child_id]
    record = runner.client.get_run(child_id)
    assert (record.parent_run_id, record.root_run_id, record.depth) == (
        result.run_id,
        result.run_id,
        1,
    )
    assert record.status is RunStatus.COMPLETED
    runs = runner.client.list_runs()
    assert Counter(r.task_id for r in runs) == {"parent": 1, "child": 1}


def test_trigger_and_wait_returns_the_childs_output_and_parent_suspends_meanwhile(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: Order) -> dict[str, str]:
        await wait.for_(minutes=30)  # the parent sleeps meanwhile: no invocation of its own
        return {"id": payload.order_id}

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> dict[str, str]:
        got = await child.trigger_and_wait({"order_id": "o-7"}, name="fetch")
        return got.unwrap()  # type: ignore[no-any-return]

    result = runner.run(parent, None)
    assert result.output == {"id": "o-7"}
    entries = [e for e in runner.journal(result.run_id) if e.kind is EntryKind.CHILD_WAIT]
    assert [(e.name, e.status) for e in entries] == [("fetch", EntryStatus.COMPLETED)]
    # The parent ran twice: before the child, and once woken by it. It did not run
    # while the child waited.
    assert runner.invocations[result.run_id] == 2
    suspended = [e for e in runner.timeline(result.run_id) if e.kind == "suspended"]
    assert len(suspended) == 1
    assert "children" in suspended[0].detail
    # The replay returned the recorded child: one child run, triggered once.
    assert [r.task_id for r in runner.client.list_runs(_all())].count("child") == 1


def test_a_child_failure_is_a_value_until_unwrapped(registry, runner):
    @task(id="child", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def child(payload: None) -> None:
        raise ValueError("card declined")

    seen: list[RunResult] = []

    @task(id="parent", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def parent(payload: None) -> str:
        got = await child.trigger_and_wait(None)
        seen.append(got)
        try:
            got.unwrap()
        except RunFailedError as exc:
            error = exc.error
            return "no error info" if error is None else f"{error.type}|{error.message}"
        return "no error"

    result = runner.run(parent, None)
    assert result.ok
    assert result.output == "ValueError|card declined"
    assert seen[-1].status is RunStatus.FAILED


def test_batch_of_100_children_on_a_queue_of_limit_5_never_runs_more_than_5(registry, runner):
    holders_seen: list[int] = []

    @step
    def count_holders() -> int:
        state = runner.flow.state(SlotKey("kids"))
        holders_seen.append(state.count)
        return state.count

    @task(id="kid", registry=registry, queue=Queue("kids", concurrency_limit=5))
    async def kid(payload: int, ctx: TaskContext) -> int:
        await count_holders()
        # Expected to take the whole invocation: the kid hops to a fresh one first,
        # keeping its unit, and the other kids' messages are delivered meanwhile.
        await ctx.step("again", count_holders, expected_duration=900)
        return payload * 2

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> list[int]:
        results = await kid.batch_trigger_and_wait(list(range(100)))
        return [r.unwrap() for r in results]

    result = runner.run(parent, None)
    assert result.output == [i * 2 for i in range(100)]  # input order
    assert len(holders_seen) == 200
    assert max(holders_seen) <= 5
    assert max(holders_seen) == 5  # the limit was reached: the test can see an excess
    parked = sum(
        1
        for child_id in _children_of(runner, result.run_id)
        for e in runner.timeline(child_id)
        if e.kind == "parked"
    )
    assert parked > 0


def test_a_parent_and_its_child_on_a_queue_of_limit_1_do_not_deadlock(registry, runner):
    single = Queue("single", concurrency_limit=1)

    @task(id="child", registry=registry, queue=single)
    async def child(payload: str) -> str:
        return payload.upper()

    @task(id="parent", registry=registry, queue=single)
    async def parent(payload: str) -> str:
        got = await child.trigger_and_wait(payload)
        return got.unwrap()  # type: ignore[no-any-return]

    result = runner.run(parent, "abc")
    assert result.output == "ABC"
    assert runner.flow.state(SlotKey("single")).count == 0
    record = runner.client.get_run(result.run_id)
    assert record.finished_at is not None
    # The parent gave its unit back while waiting: the child ran at once, not
    # after the parent's unit was reclaimed at its lease expiry.
    assert (record.finished_at - record.created_at).total_seconds() < 60


def test_a_bad_child_payload_raises_in_the_parent_and_creates_nothing(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: Order) -> str:
        return payload.order_id

    @task(id="parent", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def parent(payload: None) -> str:
        try:
            await child.trigger_and_wait({"order": 1})
        except PayloadValidationError as exc:
            return str(exc)
        return "created"

    result = runner.run(parent, None)
    assert "order_id" in result.output
    assert [r.task_id for r in runner.client.list_runs()] == ["parent"]
    assert not [e for e in runner.journal(result.run_id) if e.kind is EntryKind.CHILD_WAIT]


def test_children_deeper_than_the_limit_fail_at_the_trigger(registry):
    runner = LocalRunner(registry=registry, settings=Settings(max_child_depth=2))

    @task(id="nest", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def nest(payload: int) -> int:
        got = await nest.trigger_and_wait(payload + 1)
        return got.unwrap()  # type: ignore[no-any-return]

    result = runner.run(nest, 0)
    assert result.status is RunStatus.FAILED
    runs = sorted(runner.client.list_runs(), key=lambda r: r.depth)
    assert [r.depth for r in runs] == [0, 1, 2]
    deepest = runs[-1]
    assert deepest.error is not None
    assert deepest.error.type.endswith("ChildDepthExceeded")
    assert "max_child_depth=2" in deepest.error.message
    # The failure travels up as a value each parent unwrapped.
    assert runs[0].error is not None
    assert "RunFailedError" in runs[0].error.type


def test_a_child_of_a_failed_parent_still_ends(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: None) -> str:
        await wait.for_(minutes=5)
        return "finished"

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> None:
        child.trigger(None)
        raise AbortRun("parent gives up")

    result = runner.run(parent, None)
    assert result.status is RunStatus.FAILED
    (child_id,) = _children_of(runner, result.run_id)
    child_result = runner.client.result(child_id)
    assert child_result is not None
    assert child_result.output == "finished"


def test_a_lost_nudge_is_recovered_by_the_parents_fallback_wake_time(registry, runner):
    sent = runner.queue.send
    dropped: list[str] = []

    def lose_nudges(message: ResumeMessage, delay_seconds: int = 0) -> None:
        if message.epoch == ANY_EPOCH:
            dropped.append(message.run_id)  # the child's worker died before sending it
            return
        sent(message, delay_seconds)

    runner.queue.send = lose_nudges  # type: ignore[method-assign]

    @task(id="child", registry=registry)
    async def child(payload: None) -> str:
        return "done"

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> str:
        got = await child.trigger_and_wait(None)
        return got.unwrap()  # type: ignore[no-any-return]

    result = runner.run(parent, None)
    assert result.output == "done"
    assert dropped == [result.run_id]
    record = runner.client.get_run(result.run_id)
    assert record.finished_at is not None
    assert (record.finished_at - record.created_at).total_seconds() >= 3600


def test_an_empty_batch_returns_no_results_and_does_not_suspend(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: int) -> int:
        return payload

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> int:
        return len(await child.batch_trigger_and_wait([]))

    result = runner.run(parent, None)
    assert result.output == 0
    assert runner.invocations[result.run_id] == 1


def test_a_dead_lettered_child_wakes_its_parent_when_the_scheduler_fails_it(registry):
    runner = LocalRunner(registry=registry, deadline=60, max_receive_count=2)

    @step
    def never_fits() -> None:
        runner.clock.advance(100)  # runs past every invocation's 60 s deadline

    @task(id="child", registry=registry)
    async def child(payload: None) -> None:
        await never_fits()

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> str:
        got = await child.trigger_and_wait(None)
        return got.status.value

    handle = runner.trigger(parent, None)
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.output == "FAILED"
    (child_id,) = _children_of(runner, handle.run_id)
    child_record = runner.client.get_run(child_id)
    assert child_record.error is not None
    assert "dead-lettered" in child_record.error.message
    record = runner.client.get_run(handle.run_id)
    assert child_record.finished_at is not None
    assert record.finished_at is not None
    # Woken by the nudge the scheduler sent, not by its fallback wake time an hour later.
    assert (record.finished_at - child_record.finished_at).total_seconds() < 60


def test_children_awaited_in_parallel_branches_are_identified_by_their_scope(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: str) -> str:
        await wait.for_(seconds=30 if payload == "slow" else 5)
        return payload

    async def branch(ctx: TaskContext, label: str, index: int) -> str:
        got = await child.trigger_and_wait(label, name="fetch")
        return f"{index}:{got.unwrap()}"

    @task(id="parent", registry=registry)
    async def parent(payload: None, ctx: TaskContext) -> list[str]:
        batch = await ctx.map(["slow", "fast"], branch, name="both")
        return batch.results()  # type: ignore[no-any-return]

    result = runner.run(parent, None)
    assert result.output == ["0:slow", "1:fast"]
    assert [r.task_id for r in runner.client.list_runs(_all())].count("child") == 2
    keys = sorted(e.key for e in runner.journal(result.run_id) if e.kind is EntryKind.CHILD_WAIT)
    assert keys == ["both#0/0/fetch#0", "both#0/1/fetch#0"]


def _all() -> RunQuery:
    return RunQuery(limit=10_000)
