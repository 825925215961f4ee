"""Cancel: a run ends CANCELED and lets go of its unit, tokens and children; its parent hears."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from durable_lambda import Queue, TaskContext, plugins, step, task, wait
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.records import ANY_EPOCH, EventKind, LeaseOutcome
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import TokenStatus
from durable_lambda.errors import RunFinishedError, RunNotFoundError, TokenAlreadyResolvedError
from durable_lambda.testing import LocalRunner, SkipClock

FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
KEY = SlotKey("single")


def _status(runner: LocalRunner, run_id: str) -> RunStatus:
    return runner.client.get_run(run_id).status


def test_a_parked_run_is_canceled_at_once_and_its_waiter_leaves_the_counter(runner, one_slot):
    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    parked = runner.trigger(one_slot, "parked").run_id
    runner.drain()
    assert _status(runner, parked) is RunStatus.WAITING_FOR_SLOT

    canceled = runner.client.cancel_run(parked)

    assert canceled.status is RunStatus.CANCELED
    assert runner.client.get_run(parked).error.type == "RunCanceled"
    assert EventKind.CANCELED in {e.kind for e in runner.timeline(parked)}
    runner.admission.leave(KEY, "someone-else")  # the holder ends: its unit goes to nobody
    runner.drain()
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting, state.holders) == (0, 0, ())
    assert _status(runner, parked) is RunStatus.CANCELED  # the release did not revive it


def test_a_run_granted_a_unit_and_canceled_hands_the_unit_on(runner, one_slot):
    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    first = runner.trigger(one_slot, "first").run_id
    runner.drain()
    second = runner.trigger(one_slot, "second").run_id
    runner.drain()
    runner.admission.leave(KEY, "someone-else")  # grants ``first``; its message is queued
    assert runner.flow.state(KEY).holds(first)

    runner.client.cancel_run(first)
    runner.drain()

    assert _status(runner, first) is RunStatus.CANCELED
    assert runner.result(second).output == "second"
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting) == (0, 0)


def test_a_run_waiting_on_a_token_is_canceled_and_its_token_reads_canceled(registry, runner):
    @task(id="approval", registry=registry)
    async def approval(payload: None, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    run_id = runner.start(approval, None).run_id
    [token] = runner.pending_tokens(run_id)

    runner.client.cancel_run(run_id)

    assert _status(runner, run_id) is RunStatus.CANCELED
    assert runner.client.retrieve_token(token.token_id).status is TokenStatus.CANCELED
    with pytest.raises(TokenAlreadyResolvedError, match="already CANCELED"):
        runner.client.complete_token(token.token_id, {"ok": True})
    runner.drain()
    assert _status(runner, run_id) is RunStatus.CANCELED


def test_a_running_run_stops_at_its_next_step_boundary(registry, runner):
    ledger: list[str] = []

    @step
    def first(run_id: str) -> str:
        ledger.append("first")
        # The cancel lands while this body runs, as from another process.
        requested = runner.client.cancel_run(run_id)
        assert requested.status is RunStatus.RUNNING
        assert requested.cancel_requested
        return "one"

    @step
    def second() -> str:
        ledger.append("second")
        return "two"

    @task(id="two-steps", registry=registry)
    async def two_steps(payload: None, ctx: TaskContext) -> str:
        await first(ctx.run_id)
        return await second()

    run_id = runner.trigger(two_steps, None).run_id
    runner.drain()

    assert ledger == ["first"]
    run = runner.client.get_run(run_id)
    assert run.status is RunStatus.CANCELED
    assert not run.cancel_requested
    # The step that ran is journaled with the CANCELED checkpoint.
    assert [e.name for e in runner.journal(run_id)] == ["first"]


def test_plugins_hear_an_invocation_that_ended_its_run_canceled(registry, runner):
    class Ends:
        def __init__(self) -> None:
            self.statuses: list[str] = []

        def on_invocation_end(self, _info: Any, outcome: Any) -> None:
            self.statuses.append(outcome.status.value)

    @step
    def first(run_id: str) -> str:
        runner.client.cancel_run(run_id)
        return "one"

    @task(id="heard", registry=registry)
    async def heard(payload: None, ctx: TaskContext) -> str:
        await first(ctx.run_id)
        return "unreachable"

    ends = plugins.register(Ends())
    try:
        runner.trigger(heard, None)
        runner.drain()
    finally:
        plugins.unregister(ends)

    assert ends.statuses == ["canceled"]


def test_a_cancel_landing_while_the_final_checkpoint_is_in_flight_wins(registry, runner):
    store = runner.worker.store
    real = store.checkpoint
    landed: list[RunStatus] = []

    def cancel_first(run_id: str, fence: Any, checkpoint: Any) -> Any:
        if not landed:  # the cancel reaches the table just before the checkpoint write
            landed.append(runner.client.cancel_run(run_id).status)
        return real(run_id, fence, checkpoint)

    store.checkpoint = cancel_first  # type: ignore[method-assign]

    @task(id="one-shot", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def one_shot(payload: None, ctx: TaskContext) -> str:
        return "done"

    run_id = runner.trigger(one_shot, None).run_id
    runner.drain()

    assert landed == [RunStatus.RUNNING]
    run = runner.client.get_run(run_id)
    assert run.status is RunStatus.CANCELED
    assert run.output is None
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting) == (0, 0)


def test_canceling_a_parent_cancels_its_children_and_leaks_no_unit(registry, runner):
    @task(id="kid", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def kid(payload: int, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    @task(id="parent", registry=registry)
    async def parent(payload: None, ctx: TaskContext) -> list[str]:
        results = await kid.batch_trigger_and_wait([1, 2, 3])
        return [r.status.value for r in results]

    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    parent_id = runner.trigger(parent, None).run_id
    runner.drain()
    kids = [child["run_id"] for child in runner.tree(parent_id)["children"]]
    assert len(kids) == 3
    assert {_status(runner, k) for k in kids} == {RunStatus.WAITING_FOR_SLOT}
    assert runner.flow.state(KEY).waiting == 3

    runner.client.cancel_run(parent_id)
    runner.admission.leave(KEY, "someone-else")  # the holder ends: nobody is left to take it
    runner.drain()

    assert _status(runner, parent_id) is RunStatus.CANCELED
    assert {_status(runner, k) for k in kids} == {RunStatus.CANCELED}
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting, state.holders) == (0, 0, ())


def test_a_parent_waiting_on_a_canceled_child_receives_a_canceled_result(registry):
    # A frozen clock moves only when the runner skips to a wake time.
    runner = LocalRunner(registry=registry, clock=SkipClock(frozen=True))

    @task(id="slow-kid", registry=registry)
    async def slow_kid(payload: None, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    @task(id="waiting-parent", registry=registry)
    async def waiting_parent(payload: None, ctx: TaskContext) -> list[Any]:
        result = await slow_kid.trigger_and_wait(None)
        return [result.status.value, result.error.type if result.error else None]

    parent_id = runner.trigger(waiting_parent, None).run_id
    runner.drain()
    [child] = [c["run_id"] for c in runner.tree(parent_id)["children"]]

    canceled_at = runner.client.cancel_run(child).finished_at
    runner.drain()

    assert runner.result(parent_id).output == ["CANCELED", "RunCanceled"]
    # Woken by the child's nudge, not by its fallback wake time: the frozen
    # clock never skipped ahead between the cancel and the parent's end.
    assert runner.client.get_run(parent_id).finished_at == canceled_at


def test_a_run_whose_holder_dies_after_a_cancel_request_is_canceled_by_its_recovery(
    registry, runner
):
    ledger: list[str] = []

    @step
    def work() -> str:
        ledger.append("work")
        return "done"

    @task(id="never-finishes", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def never_finishes(payload: None, ctx: TaskContext) -> str:
        return await work()

    run_id = runner.trigger(never_finishes, None).run_id
    now = runner.clock.now()
    # An invocation takes the run and its unit, then dies without a word.
    runner.store.take_lease(run_id, 0, "dead", now + dt.timedelta(seconds=30), now)
    runner.flow.acquire(KEY, run_id, now + dt.timedelta(seconds=30), 1)
    requested = runner.client.cancel_run(run_id)
    assert requested.cancel_requested
    runner.clock.advance(60)  # its lease has expired: a recovery message takes the run

    report = runner.invoke_once(run_id, 0)

    assert (report.action, report.status) == (Action.CANCELED, RunStatus.CANCELED)
    assert ledger == []  # no step body runs once a cancel was requested
    run = runner.client.get_run(run_id)
    assert (run.status, run.output, run.cancel_requested) == (RunStatus.CANCELED, None, False)
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting) == (0, 0)


def _parent_of_parked_kids(registry, runner) -> tuple[str, list[str]]:
    """A parent waiting on three kids parked behind a unit held elsewhere."""

    @task(id="kid", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def kid(payload: int, ctx: TaskContext) -> int:
        return payload

    @task(id="parent", registry=registry)
    async def parent(payload: None, ctx: TaskContext) -> list[str]:
        results = await kid.batch_trigger_and_wait([1, 2, 3])
        return [r.status.value for r in results]

    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    parent_id = runner.trigger(parent, None).run_id
    runner.drain()
    return parent_id, [child["run_id"] for child in runner.tree(parent_id)["children"]]


class _SettleDies:
    """Makes the first settle of a canceled run die, as a process killed right there."""

    def __init__(self, cancels: Any) -> None:
        self.real = cancels.settle
        self.died = 0

    def __call__(self, run: Any, **options: Any) -> None:
        if not self.died:
            self.died += 1
            raise ConnectionError("killed between the CANCELED write and the settle")
        self.real(run, **options)


def test_a_worker_killed_before_settling_a_cancel_settles_it_on_redelivery(registry, runner):
    parent_id, kids = _parent_of_parked_kids(registry, runner)
    # The parent is flagged while an invocation holds it: that invocation ends it.
    parent = runner.client.get_run(parent_id)
    now = runner.clock.now()
    taken = runner.store.take_lease(parent_id, ANY_EPOCH, "w", now + dt.timedelta(seconds=60), now)
    assert taken.outcome is LeaseOutcome.TAKEN
    runner.client.cancel_run(parent_id)
    runner.worker.cancels.settle = _SettleDies(runner.worker.cancels)  # type: ignore[method-assign]
    runner.clock.advance(120)  # that holder died; its recovery message ends the run

    with pytest.raises(ConnectionError):
        runner.invoke_once(parent_id, parent.epoch)
    assert _status(runner, parent_id) is RunStatus.CANCELED
    report = runner.invoke_once(parent_id, parent.epoch)  # SQS delivers the message again

    assert report.action is Action.STALE
    assert {_status(runner, k) for k in kids} == {RunStatus.CANCELED}


def test_a_cancel_whose_settle_died_is_settled_when_the_cancel_is_retried(registry, runner):
    parent_id, kids = _parent_of_parked_kids(registry, runner)
    cancels = runner.client.cancels
    cancels.settle = _SettleDies(cancels)  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        cancels.cancel(parent_id)
    assert _status(runner, parent_id) is RunStatus.CANCELED

    with pytest.raises(RunFinishedError, match="already finished CANCELED"):
        cancels.cancel(parent_id)  # the caller retries: nothing changes but the settle

    assert {_status(runner, k) for k in kids} == {RunStatus.CANCELED}


def test_canceling_a_finished_run_is_refused_and_changes_nothing(registry, runner):
    @task(id="quick", registry=registry)
    async def quick(payload: None, ctx: TaskContext) -> str:
        return "ok"

    run_id = runner.run(quick, None).run_id
    before = runner.client.get_run(run_id)
    events = runner.timeline(run_id)

    with pytest.raises(RunFinishedError, match="already finished COMPLETED"):
        runner.client.cancel_run(run_id)

    assert runner.client.get_run(run_id) == before
    assert runner.timeline(run_id) == events


def test_canceling_an_unknown_run_names_it(runner):
    with pytest.raises(RunNotFoundError, match="run_missing"):
        runner.client.cancel_run("run_missing")
