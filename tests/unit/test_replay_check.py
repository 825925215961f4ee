"""replay-check: journals of runs replayed against changed code, executing and writing nothing."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from durable_lambda import TaskContext, step, task, wait
from durable_lambda.engine.records import RunQuery
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import NonDeterminismError
from durable_lambda.ports import RunStore
from durable_lambda.replay_check import (
    ReadOnlyRunStore,
    ReadOnlyStoreError,
    Verdict,
    check,
)
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

EXECUTED: list[str] = []


def order_flow(registry: TaskRegistry, first: str, second: str, after_wait: str) -> None:
    """Task ``flow``: steps ``first`` and ``second``, a 1-hour wait, then ``after_wait``."""

    @step(name=first)
    def one() -> str:
        EXECUTED.append(first)
        return first

    @step(name=second)
    def two() -> str:
        EXECUTED.append(second)
        return second

    @step(name=after_wait)
    def three() -> str:
        EXECUTED.append(after_wait)
        return after_wait

    @task(id="flow", registry=registry)
    async def flow(payload: dict[str, Any], ctx: TaskContext) -> list[str]:
        done = [await one(), await two()]
        await wait.for_(hours=1)
        return [*done, await three()]


def suspended_run(first: str = "a", second: str = "b") -> tuple[LocalRunner, str]:
    """A ``flow`` run (v1 code) suspended at its wait, after its two first steps."""
    v1 = TaskRegistry()
    order_flow(v1, first, second, "c")
    runner = LocalRunner(registry=v1, rng=random.Random(1))
    run_id = runner.trigger("flow", {"n": 1}).run_id
    runner.step_once()
    assert runner.client.get_run(run_id).status is RunStatus.SUSPENDED
    EXECUTED.clear()
    return runner, run_id


def snapshot(store: RunStore) -> Any:
    runs = [store.list_runs(RunQuery(status=s, limit=100)) for s in RunStatus]
    ids = sorted(r.run_id for group in runs for r in group)
    return (
        runs,
        [store.load_journal(i) for i in ids],
        [store.list_events(i) for i in ids],
    )


@pytest.fixture(autouse=True)
def _fresh_executed() -> None:
    EXECUTED.clear()


def test_unchanged_code_replays_every_run_and_executes_nothing():
    runner, run_id = suspended_run()
    v1 = TaskRegistry()
    order_flow(v1, "a", "b", "c")
    before = snapshot(runner.store)

    report = check(runner.store, v1, clock=runner.clock)

    assert report.ok
    [only] = report.runs
    # Both steps replayed; the wait, still pending, stops the replay there.
    assert (only.run_id, only.verdict, only.replayed) == (run_id, Verdict.OK, 2)
    assert EXECUTED == []
    assert snapshot(runner.store) == before


def test_renamed_step_is_reported_with_its_position_and_both_calls():
    runner, run_id = suspended_run()
    v2 = TaskRegistry()
    order_flow(v2, "a", "b-renamed", "c")

    report = check(runner.store, v2, clock=runner.clock)

    assert not report.ok
    [broken] = report.broken
    assert broken.run_id == run_id
    assert broken.task_id == "flow"
    assert broken.verdict is Verdict.NON_DETERMINISTIC
    assert (broken.scope, broken.position) == ("", 1)
    assert (broken.recorded, broken.now) == ("b#0", "b-renamed#0")
    assert "b-renamed#0" in broken.detail
    assert EXECUTED == []


def test_swapped_step_order_is_caught_at_the_first_position():
    runner, _ = suspended_run()
    v2 = TaskRegistry()
    order_flow(v2, "b", "a", "c")

    [broken] = check(runner.store, v2, clock=runner.clock).broken

    assert (broken.position, broken.recorded, broken.now) == (0, "a#0", "b#0")


def test_a_run_that_has_not_reached_the_changed_part_passes():
    runner, _ = suspended_run()
    v2 = TaskRegistry()
    order_flow(v2, "a", "b", "c-changed-after-the-wait")

    report = check(runner.store, v2, clock=runner.clock)

    assert report.ok
    assert EXECUTED == []


def test_a_due_run_stops_at_its_frontier_without_running_the_next_step():
    runner, _ = suspended_run()
    runner.clock.advance(2 * 3600)  # the wait is over: the next invocation would run "c"
    v1 = TaskRegistry()
    order_flow(v1, "a", "b", "c")

    [only] = check(runner.store, v1, clock=runner.clock).runs

    assert (only.verdict, only.frontier) == (Verdict.OK, "c#0")
    assert EXECUTED == []


def test_completed_runs_within_the_window_are_checked_and_older_ones_skipped():
    v1 = TaskRegistry()
    order_flow(v1, "a", "b", "c")
    runner = LocalRunner(registry=v1, rng=random.Random(1))
    result = runner.run("flow", {"n": 1})
    v2 = TaskRegistry()
    order_flow(v2, "a", "b", "c2")

    [broken] = check(runner.store, v2, clock=runner.clock).broken
    assert (broken.run_id, broken.status) == (result.run_id, RunStatus.COMPLETED)
    assert (broken.recorded, broken.now) == ("c#0", "c2#0")

    runner.clock.advance(3 * 86400)
    assert check(runner.store, v2, clock=runner.clock).runs == ()
    assert check(runner.store, v2, clock=runner.clock, window=dt.timedelta(days=7)).broken


def test_a_task_that_now_returns_before_recorded_calls_is_caught():
    runner, _ = suspended_run()
    v2 = TaskRegistry()

    @task(id="flow", registry=v2)
    async def flow(payload: dict[str, Any]) -> list[str]:
        return []

    [broken] = check(runner.store, v2, clock=runner.clock).broken

    assert (broken.position, broken.recorded, broken.now) == (0, "a#0", None)


def test_non_determinism_swallowed_by_the_task_is_still_reported():
    runner, _ = suspended_run()
    v2 = TaskRegistry()

    @step(name="other")
    def other() -> str:
        return "x"

    @task(id="flow", registry=v2)
    async def flow(payload: dict[str, Any]) -> str:
        try:
            await other()
        except NonDeterminismError:
            return "swallowed"
        return "unreachable"

    [broken] = check(runner.store, v2, clock=runner.clock).broken

    assert (broken.recorded, broken.now) == ("a#0", "other#0")


def test_a_task_missing_from_the_current_code_breaks_its_runs():
    runner, run_id = suspended_run()

    [broken] = check(runner.store, TaskRegistry(), clock=runner.clock).broken

    assert (broken.run_id, broken.verdict) == (run_id, Verdict.UNKNOWN_TASK)
    assert "flow" in broken.detail


def test_a_payload_the_current_code_rejects_breaks_its_run():
    runner, _ = suspended_run()
    v2 = TaskRegistry()

    @task(id="flow", registry=v2)
    async def flow(payload: int) -> int:
        return payload

    [broken] = check(runner.store, v2, clock=runner.clock).broken

    assert broken.verdict is Verdict.INVALID_PAYLOAD


def test_the_check_can_name_its_runs_and_filter_by_task():
    runner, run_id = suspended_run()
    v1 = TaskRegistry()
    order_flow(v1, "a", "b", "c")

    assert [r.run_id for r in check(runner.store, v1, run_ids=[run_id]).runs] == [run_id]
    assert check(runner.store, v1, clock=runner.clock, task_id="other").runs == ()


def test_the_read_only_store_refuses_every_write():
    runner, run_id = suspended_run()
    store = ReadOnlyRunStore(runner.store)
    run = store.get_run(run_id)
    assert run is not None
    writes = [
        lambda: store.create_run(run),
        lambda: store.create_runs([run], []),
        lambda: store.take_lease(run_id, 0, "me", run.created_at, run.created_at),
        lambda: store.record_entry(run_id, None, None),  # type: ignore[arg-type]
        lambda: store.checkpoint(run_id, None, None),  # type: ignore[arg-type]
        lambda: store.add_events(run_id, []),
        lambda: store.fail_run(run_id, None, None, epoch=0),  # type: ignore[arg-type]
        lambda: store.note_delivery_error(run_id, "x"),
        lambda: store.add_timer(None),  # type: ignore[arg-type]
        lambda: store.delete_timer(None),  # type: ignore[arg-type]
    ]
    for write in writes:
        with pytest.raises(ReadOnlyStoreError, match="read-only: RunStore"):
            write()
    assert store.load_journal(run_id) == runner.store.load_journal(run_id)


def paged(registry: TaskRegistry, step_name: str) -> None:
    """Task ``pages``: a map of two items, each a step ``step_name`` then a 1-hour wait."""

    @step(name=step_name)
    def page(n: int) -> int:
        EXECUTED.append(f"{step_name}:{n}")
        return n

    async def one(ctx: TaskContext, n: int, index: int) -> int:
        value = await page(n)
        await wait.for_(hours=1)
        return value

    @task(id="pages", registry=registry)
    async def pages(payload: int, ctx: TaskContext) -> list[int]:
        batch = await ctx.map(range(payload), one, name="pages")
        return batch.results()


def test_a_run_suspended_inside_a_map_is_checked_branch_by_branch():
    v1 = TaskRegistry()
    paged(v1, "page")
    runner = LocalRunner(registry=v1, rng=random.Random(1))
    run_id = runner.trigger("pages", 2).run_id
    runner.step_once()  # both branches recorded their step and wait; the batch is not recorded
    assert runner.client.get_run(run_id).status is RunStatus.SUSPENDED
    before = snapshot(runner.store)
    EXECUTED.clear()

    assert check(runner.store, v1, clock=runner.clock).ok
    v2 = TaskRegistry()
    paged(v2, "page-renamed")
    [broken] = check(runner.store, v2, clock=runner.clock).broken

    assert broken.verdict is Verdict.NON_DETERMINISTIC
    assert broken.scope == "pages#0/0"
    assert (broken.position, broken.recorded, broken.now) == (
        0,
        "pages#0/0/page#0",
        "pages#0/0/page-renamed#0",
    )
    assert EXECUTED == []
    assert snapshot(runner.store) == before


def test_a_completed_map_replays_from_its_record_and_stops_where_it_would_write():
    v1 = TaskRegistry()
    paged(v1, "page")
    runner = LocalRunner(registry=v1, rng=random.Random(1))
    result = runner.run("pages", 2)
    assert result.output == [0, 1]
    EXECUTED.clear()

    [only] = check(runner.store, v1, clock=runner.clock).runs

    assert (only.run_id, only.verdict) == (result.run_id, Verdict.OK)
    assert EXECUTED == []


def parent_of(registry: TaskRegistry, child_name: str) -> None:
    @task(id="kid", registry=registry)
    async def kid(payload: int) -> int:
        return payload * 2

    @task(id="parent", registry=registry)
    async def parent(payload: int) -> int:
        result = await kid.trigger_and_wait(payload, name=child_name)
        return int(result.unwrap())


def test_a_parent_waiting_on_children_reads_their_states_and_writes_nothing():
    v1 = TaskRegistry()
    parent_of(v1, "kid-call")
    runner = LocalRunner(registry=v1, rng=random.Random(1))
    parent_id = runner.trigger("parent", 4).run_id
    runner.step_once()  # the parent triggered its child and suspended
    assert runner.client.get_run(parent_id).status is RunStatus.SUSPENDED
    before = snapshot(runner.store)

    report = check(runner.store, v1, clock=runner.clock, task_id="parent")
    assert [(r.run_id, r.verdict) for r in report.runs] == [(parent_id, Verdict.OK)]
    runner.step_once()  # the child completes: now the parent's replay reads a finished child
    assert check(runner.store, v1, clock=runner.clock, task_id="parent").ok
    v2 = TaskRegistry()
    parent_of(v2, "kid-renamed")
    [broken] = check(runner.store, v2, clock=runner.clock, task_id="parent").broken

    assert (broken.recorded, broken.now) == ("kid-call#0", "kid-renamed#0")
    runner.drain()
    assert runner.client.get_run(parent_id).status is RunStatus.COMPLETED
    assert snapshot(runner.store) != before  # the runner wrote; the checks above did not
