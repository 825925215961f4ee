"""Cancel on both backends: the store's conditional write, and whole runs through a LocalRunner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from contract_backends import Backend, at
from faults import Fault

from durable_lambda import Queue, TaskContext, step, task, wait
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.records import (
    CancelAction,
    Checkpoint,
    EventKind,
    Fence,
    LeaseOutcome,
    TimelineEvent,
)
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import TokenStatus
from durable_lambda.errors import (
    CancelRequestedError,
    LeaseLostError,
    RunFinishedError,
    RunNotFoundError,
    TokenAlreadyResolvedError,
)
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
KEY = SlotKey("single")


def _entry(seq: int = 0) -> JournalEntry:
    return JournalEntry(
        seq=seq,
        name="charge",
        occurrence=0,
        kind=EntryKind.STEP,
        status=EntryStatus.COMPLETED,
        attempts=1,
        result='"ok"',
        started_at=at(11),
        ended_at=at(12),
    )


def _take(backend: Backend, run_id: str, *, expiry: float = 100) -> Fence:
    taken = backend.store.take_lease(run_id, 0, "worker-1", at(expiry), at(10))
    assert taken.outcome is LeaseOutcome.TAKEN
    return Fence("worker-1", 0)


# -- the store's cancel ----------------------------------------------------------------------


def test_a_queued_run_is_canceled_at_once_and_no_message_takes_it_again(backend: Backend):
    run = backend.new_run()

    result = backend.store.cancel_run(run.run_id, at(20), "no longer needed")

    assert (result.action, result.previous) == (CancelAction.NOW, RunStatus.QUEUED)
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.epoch, stored.finished_at) == (RunStatus.CANCELED, 1, at(20))
    assert stored.error is not None
    assert (stored.error.type, stored.error.message) == ("RunCanceled", "no longer needed")
    assert [e.kind for e in backend.store.list_events(run.run_id)] == [EventKind.CANCELED]
    taken = backend.store.take_lease(run.run_id, 0, "late", at(100), at(30))
    assert taken.outcome is LeaseOutcome.STALE


def test_a_run_held_live_is_flagged_and_its_holder_may_only_end_it_canceled(backend: Backend):
    run = backend.new_run()
    fence = _take(backend, run.run_id)

    result = backend.store.cancel_run(run.run_id, at(20), "stop")

    assert result.action is CancelAction.REQUEST
    flagged = backend.store.get_run(run.run_id)
    assert flagged is not None
    assert (flagged.status, flagged.cancel_requested) == (RunStatus.RUNNING, True)
    with pytest.raises(CancelRequestedError):
        backend.store.record_entry(run.run_id, fence, _entry())
    with pytest.raises(CancelRequestedError):
        backend.store.checkpoint(
            run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output='"done"')
        )
    assert backend.store.load_journal(run.run_id) == []
    event = TimelineEvent(at(30), EventKind.CANCELED, "stop")
    ended = backend.store.checkpoint(
        run.run_id,
        fence,
        Checkpoint(status=RunStatus.CANCELED, new_epoch=True, entries=(_entry(),), events=(event,)),
    )
    assert (ended.status, ended.cancel_requested) == (RunStatus.CANCELED, False)
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.cancel_requested, stored.output) == (
        RunStatus.CANCELED,
        False,
        None,
    )
    assert [e.name for e in backend.store.load_journal(run.run_id)] == ["charge"]


def test_a_run_whose_holder_died_is_canceled_at_once_and_the_holder_is_fenced_out(
    backend: Backend,
):
    run = backend.new_run()
    fence = _take(backend, run.run_id, expiry=30)

    result = backend.store.cancel_run(run.run_id, at(60), "stop")

    assert result.action is CancelAction.NOW
    with pytest.raises(LeaseLostError):
        backend.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED))
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert stored.status is RunStatus.CANCELED


def test_a_finished_run_is_not_canceled_and_nothing_changes(backend: Backend):
    run = backend.new_run()
    fence = _take(backend, run.run_id)
    backend.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output="1"))
    before = backend.store.get_run(run.run_id)
    events = backend.store.list_events(run.run_id)

    with pytest.raises(RunFinishedError, match="already finished COMPLETED"):
        backend.store.cancel_run(run.run_id, at(50), "too late")

    assert backend.store.get_run(run.run_id) == before
    assert backend.store.list_events(run.run_id) == events


def test_an_unknown_run_is_not_found(backend: Backend):
    with pytest.raises(RunNotFoundError, match="run_nope"):
        backend.store.cancel_run("run_nope", at(1), "x")


@pytest.mark.moto
def test_a_worker_taking_the_run_between_the_cancels_read_and_write_gets_flagged(aws: Backend):
    run = aws.new_run()
    worker_store = aws.other_store()
    client = aws.store.client  # type: ignore[attr-defined]
    raced: list[str] = []

    def take_first(**_: Any) -> None:
        if not raced:  # the cancel read QUEUED; a worker takes the run before it writes
            raced.append("taken")
            worker_store.take_lease(run.run_id, 0, "worker-1", at(100), at(10))

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", take_first)
    try:
        result = aws.store.cancel_run(run.run_id, at(20), "stop")
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", take_first)

    assert raced == ["taken"]
    assert (result.action, result.previous) == (CancelAction.REQUEST, RunStatus.RUNNING)
    stored = aws.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.cancel_requested) == (RunStatus.RUNNING, True)
    with pytest.raises(CancelRequestedError):
        worker_store.record_entry(run.run_id, Fence("worker-1", 0), _entry())


@pytest.mark.moto
@pytest.mark.parametrize("kind", [Fault.APPLIED_THEN_TIMEOUT, Fault.APPLIED_THEN_5XX])
@pytest.mark.parametrize("state", ["queued", "held"])
def test_a_retried_cancel_is_accepted_as_our_own(aws: Backend, kind: Fault, state: str):
    held = state == "held"
    run = aws.new_run()
    if held:
        _take(aws, run.run_id)
    assert aws.faults is not None
    aws.faults.inject("TransactWriteItems", kind)

    result = aws.store.cancel_run(run.run_id, at(20), "stop")

    assert aws.faults.count("TransactWriteItems") == 1
    assert result.action is (CancelAction.REQUEST if held else CancelAction.NOW)
    stored = aws.store.get_run(run.run_id)
    assert stored is not None
    expected = RunStatus.RUNNING if held else RunStatus.CANCELED
    assert (stored.status, stored.cancel_requested) == (expected, held)


# -- whole runs ------------------------------------------------------------------------------


def _runner(backend: Backend, registry: TaskRegistry) -> LocalRunner:
    return LocalRunner(
        registry=registry, store=backend.store, flow=backend.flow, tokens=backend.tokens
    )


def _before_final_checkpoint(backend: Backend, runner: LocalRunner, act: Callable[[], Any]) -> None:
    """Call ``act`` once, just before the write of a COMPLETED checkpoint reaches the store."""
    done: list[bool] = []
    if backend.faults is None:
        real = backend.store.checkpoint

        def checkpoint(run_id: str, fence: Fence, checkpoint: Checkpoint) -> Any:
            if not done and checkpoint.status is RunStatus.COMPLETED:
                done.append(True)
                act()
            return real(run_id, fence, checkpoint)

        backend.store.checkpoint = checkpoint  # type: ignore[method-assign]
        return

    def completing(params: dict[str, Any], **_: Any) -> None:
        for item in params.get("TransactItems", []):
            values = item.get("Update", {}).get("ExpressionAttributeValues", {})
            if not done and values.get(":status") == {"S": RunStatus.COMPLETED.value}:
                done.append(True)
                act()

    client = backend.store.client  # type: ignore[attr-defined]
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", completing)


def test_a_cancel_landing_while_the_completing_checkpoint_is_in_flight_wins(backend: Backend):
    registry = TaskRegistry()

    @task(id="one-shot", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def one_shot(payload: None, ctx: TaskContext) -> str:
        return "done"

    runner = _runner(backend, registry)
    run_id = runner.trigger(one_shot, None).run_id
    landed: list[RunStatus] = []
    _before_final_checkpoint(
        backend, runner, lambda: landed.append(runner.client.cancel_run(run_id).status)
    )
    runner.drain()

    assert landed == [RunStatus.RUNNING]
    run = runner.client.get_run(run_id)
    assert (run.status, run.output) == (RunStatus.CANCELED, None)
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting, state.holders) == (0, 0, ())


def test_a_running_run_stops_at_its_next_step_boundary(backend: Backend):
    registry = TaskRegistry()
    ledger: list[str] = []
    runner = _runner(backend, registry)

    @step
    def first(run_id: str) -> str:
        ledger.append("first")
        runner.client.cancel_run(run_id)  # lands while this body runs
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
    assert runner.client.get_run(run_id).status is RunStatus.CANCELED
    assert [e.name for e in runner.journal(run_id)] == ["first"]


def test_a_parked_run_and_a_token_waiter_are_canceled_without_a_unit_leak(backend: Backend):
    registry = TaskRegistry()

    @task(id="approval", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def approval(payload: None, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    runner = _runner(backend, registry)
    waiting = runner.start(approval, None).run_id
    [token] = runner.pending_tokens(waiting)
    assert backend.flow is not None
    backend.flow.acquire(KEY, "someone-else", FAR, 1)
    parked = runner.trigger(approval, None).run_id
    runner.drain()
    assert runner.client.get_run(parked).status is RunStatus.WAITING_FOR_SLOT

    runner.client.cancel_run(waiting)
    runner.client.cancel_run(parked)
    runner.admission.leave(KEY, "someone-else")
    runner.drain()

    assert runner.client.get_run(waiting).status is RunStatus.CANCELED
    assert runner.client.get_run(parked).status is RunStatus.CANCELED
    assert runner.client.retrieve_token(token.token_id).status is TokenStatus.CANCELED
    with pytest.raises(TokenAlreadyResolvedError, match="CANCELED"):
        runner.client.complete_token(token.token_id, "yes")
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting, state.holders) == (0, 0, ())


def test_a_canceled_parent_cancels_its_children_and_a_waiting_parent_hears(backend: Backend):
    registry = TaskRegistry()

    @task(id="kid", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def kid(payload: int, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    @task(id="middle", registry=registry)
    async def middle(payload: None, ctx: TaskContext) -> list[str]:
        results = await kid.batch_trigger_and_wait([1, 2])
        return [r.status.value for r in results]

    @task(id="top", registry=registry)
    async def top(payload: None, ctx: TaskContext) -> list[Any]:
        result = await middle.trigger_and_wait(None)
        return [result.status.value, result.error.type if result.error else None]

    runner = _runner(backend, registry)
    top_id = runner.trigger(top, None).run_id
    runner.drain()
    [middle_id] = [c["run_id"] for c in runner.tree(top_id)["children"]]
    kids = [c["run_id"] for c in runner.tree(middle_id)["children"]]
    assert len(kids) == 2

    runner.client.cancel_run(middle_id)
    runner.drain()

    assert {runner.client.get_run(k).status for k in kids} == {RunStatus.CANCELED}
    assert runner.result(top_id).output == ["CANCELED", "RunCanceled"]
    state = runner.flow.state(KEY)
    assert (state.count, state.waiting, state.holders) == (0, 0, ())


@pytest.mark.parametrize("call", ["trigger", "trigger_and_wait", "batch_trigger_and_wait"])
def test_a_child_created_just_before_its_parents_cancel_is_canceled_too(
    backend: Backend, call: str
):
    """The cancel lands between the children's creation and the parent's journal entry.

    The cascade reads the children from the parent's journal; the entry naming
    these was refused with the rest of the holder's writes, so only the
    invocation that created them knows them.
    """

    registry = TaskRegistry()

    @task(id="kid", registry=registry)
    async def kid(payload: int, ctx: TaskContext) -> Any:
        token = await wait.create_token(timeout=dt.timedelta(days=1))
        return await wait.for_token(token)

    @task(id="parent", registry=registry)
    async def parent(payload: None, ctx: TaskContext) -> str:
        if call == "trigger":
            kid.trigger(1)
        elif call == "trigger_and_wait":
            await kid.trigger_and_wait(1)
        else:
            await kid.batch_trigger_and_wait([1, 2])
        await wait.for_(seconds=1)
        return "unreachable"

    runner = LocalRunner(
        registry=registry, store=backend.store, flow=backend.flow, tokens=backend.tokens
    )
    store = runner.client.store
    real = store.create_runs
    created: list[str] = []

    def create_then_cancel(runs: Any, *args: Any, **kwargs: Any) -> Any:
        stored = real(runs, *args, **kwargs)
        created.extend(r.run_id for r in stored)
        runner.client.cancel_run(runs[0].parent_run_id)  # from another process, just now
        return stored

    store.create_runs = create_then_cancel  # type: ignore[method-assign]
    parent_id = runner.trigger(parent, None).run_id
    runner.drain()

    assert runner.client.get_run(parent_id).status is RunStatus.CANCELED
    assert created
    assert {k: runner.client.get_run(k).status for k in created} == dict.fromkeys(
        created, RunStatus.CANCELED
    )
