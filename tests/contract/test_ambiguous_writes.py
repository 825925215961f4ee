"""Writes whose first attempt was applied but whose response was lost, then retried by botocore.

Every write must accept its own retry: the retry's failed condition is read
back and recognised as our own write, never as a lost lease or a lost race.
On moto the fault injector makes the first attempt apply and then time out
(or answer 500); moto ignores ``ClientRequestToken``, so the read-back alone
carries correctness there. The memory backend has no wire: the same tests
check the plain outcome.
"""

from __future__ import annotations

import pytest
from contract_backends import Backend, at
from faults import Fault

from durable_lambda import Queue, TaskContext, task, wait
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.records import Checkpoint, EventKind, Fence, LeaseOutcome, TimelineEvent
from durable_lambda.engine.slots import AcquireOutcome, SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

OWNER = "owner-a"
AMBIGUOUS = [Fault.APPLIED_THEN_TIMEOUT, Fault.APPLIED_THEN_5XX]


def entry(seq: int, result: str = '"ok"') -> JournalEntry:
    return JournalEntry(seq, "step", seq, EntryKind.STEP, EntryStatus.COMPLETED, result=result)


def fault(backend: Backend, operation: str, kind: Fault) -> None:
    """Fault the next ``operation`` on moto (memory has no wire to fault)."""
    if backend.faults is not None:
        backend.faults.inject(operation, kind)


def assert_injected(backend: Backend, operation: str) -> None:
    """The fault really happened (a test that injects nothing proves nothing)."""
    if backend.faults is not None:
        assert backend.faults.count(operation) == 1


# -- the run store ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_step_record_is_accepted_as_our_own(backend: Backend, kind: Fault):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    fault(backend, "TransactWriteItems", kind)
    backend.store.record_entry(run.run_id, Fence(OWNER, 0), entry(0))
    assert_injected(backend, "TransactWriteItems")
    assert [e.seq for e in backend.store.load_journal(run.run_id)] == [0]
    backend.store.record_entry(run.run_id, Fence(OWNER, 0), entry(1))  # the lease still holds


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_checkpoint_returns_the_run_as_it_wrote_it(backend: Backend, kind: Fault):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    fault(backend, "TransactWriteItems", kind)
    stored = backend.store.checkpoint(
        run.run_id,
        Fence(OWNER, 0),
        Checkpoint(
            status=RunStatus.SUSPENDED,
            wake_at=at(5000),
            new_epoch=True,
            entries=(entry(0),),
            events=(TimelineEvent(at(20), EventKind.SUSPENDED, "wait"),),
            timer=True,
        ),
    )
    assert_injected(backend, "TransactWriteItems")
    assert (stored.status, stored.epoch, stored.wake_at) == (RunStatus.SUSPENDED, 1, at(5000))
    again = backend.store.get_run(run.run_id)
    assert again is not None
    assert (again.status, again.epoch) == (RunStatus.SUSPENDED, 1)
    assert [e.seq for e in backend.store.load_journal(run.run_id)] == [0]
    assert [e.kind for e in backend.store.list_events(run.run_id)] == [EventKind.SUSPENDED]
    assert len(backend.store.due_timers(at(6000))) == 1


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_create_returns_the_run(backend: Backend, kind: Fault):
    fault(backend, "PutItem", kind)
    run = backend.new_run()
    assert_injected(backend, "PutItem")
    assert backend.store.get_run(run.run_id) == run


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_create_with_an_idempotency_key_returns_the_run(backend: Backend, kind: Fault):
    fault(backend, "TransactWriteItems", kind)
    run = backend.new_run(idempotency_key="order-1")
    assert_injected(backend, "TransactWriteItems")
    assert backend.store.get_run(run.run_id) == run
    assert backend.new_run(idempotency_key="order-1").run_id == run.run_id


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_lease_take_is_taken(backend: Backend, kind: Fault):
    run = backend.new_run()
    fault(backend, "UpdateItem", kind)
    taken = backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    assert_injected(backend, "UpdateItem")
    assert taken.outcome is LeaseOutcome.TAKEN
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert stored.invocations == 1


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_fail_run_reports_the_failure(backend: Backend, kind: Fault):
    from durable_lambda.engine.journal import ErrorInfo  # noqa: PLC0415

    run = backend.new_run()
    fault(backend, "UpdateItem", kind)
    failed = backend.store.fail_run(
        run.run_id,
        ErrorInfo("DeadLetter", "gave up"),
        TimelineEvent(at(50), EventKind.FAILED, "dlq"),
        epoch=run.epoch,
    )
    assert_injected(backend, "UpdateItem")
    assert failed is not None
    assert failed.status is RunStatus.FAILED
    assert [e.kind for e in backend.store.list_events(run.run_id)] == [EventKind.FAILED]


# -- the flow store ---------------------------------------------------------------------------

KEY = SlotKey("q")


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_acquire_takes_one_unit(backend: Backend, kind: Fault):
    assert backend.flow is not None
    fault(backend, "UpdateItem", kind)
    result = backend.flow.acquire(KEY, "run_a", at(300), 2)
    assert_injected(backend, "UpdateItem")
    assert result.outcome is AcquireOutcome.ACQUIRED
    assert backend.flow.state(KEY).count == 1


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_release_reports_the_counter(backend: Backend, kind: Fault):
    assert backend.flow is not None
    backend.flow.acquire(KEY, "run_a", at(300), 2)
    fault(backend, "UpdateItem", kind)
    state = backend.flow.release(KEY, "run_a")
    assert_injected(backend, "UpdateItem")
    # None would mean "held nothing": the caller would skip handing the unit on.
    assert state is not None
    assert state.count == 0
    assert backend.flow.state(KEY).count == 0


# -- a whole run through the worker -----------------------------------------------------------


@pytest.mark.parametrize("kind", AMBIGUOUS)
@pytest.mark.parametrize(
    # A trigger's create is a transaction (its event folded in); a bare PutItem
    # create is covered by test_a_retried_create_returns_the_run.
    "operations",
    [("TransactWriteItems",), ("TransactWriteItems", "UpdateItem")],
)
def test_a_run_whose_every_write_is_retried_completes_with_each_step_once(
    backend: Backend, registry: TaskRegistry, kind: Fault, operations: tuple[str, ...]
):
    """Every write (of ``operations``) answers its first try with a fault."""
    if backend.faults is not None:
        for operation in operations:
            backend.faults.inject(operation, kind, calls=set(range(1, 200)))
    runner = LocalRunner(registry=registry, store=backend.store, flow=backend.flow)
    bodies: list[str] = []

    @task(id="ambiguous", registry=registry, queue=Queue("amb", concurrency_limit=1))
    async def flow(payload: int, ctx: TaskContext) -> int:
        total = 0
        for i in range(payload):
            total += await ctx.step(f"add{i}", lambda i=i: bodies.append(f"add{i}") or i)
            await wait.for_(seconds=30)
        return total

    result = runner.run(flow, 3)
    assert result.ok
    assert result.output == 3
    assert [r.action for r in runner.reports] == ["executed"] * 4  # nothing abandoned
    assert bodies == ["add0", "add1", "add2"]
    assert [e.key for e in runner.journal(result.run_id)].count("add0#0") == 1
    assert backend.flow is not None
    assert backend.flow.state(SlotKey("amb")).count == 0
    if backend.faults is not None:
        assert backend.faults.count("TransactWriteItems") >= 4
        assert backend.faults.count("TransactWriteItems") >= 4  # 3 step records, checkpoints
        assert all(backend.faults.count(operation) >= 1 for operation in operations)


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_blob_put_stores_the_value_once(backend: Backend, kind: Fault):
    fault(backend, "PutObject", kind)
    text = '"' + "y" * (70 * 1024) + '"'
    stored = backend.store.values.store("step 'big' result", text)  # type: ignore[attr-defined]
    assert_injected(backend, "PutObject")
    assert backend.store.values.load(stored) == text  # type: ignore[attr-defined]
    assert backend.blob_count() == 1


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_rate_admission_records_one_start(backend: Backend, kind: Fault):
    assert backend.flow is not None
    fault(backend, "PutItem", kind)
    assert backend.flow.admit("rated", 2, 60, at(10)) == 0.0
    assert_injected(backend, "PutItem")
    # One start recorded, so one more fits in the window.
    assert backend.flow.admit("rated", 2, 60, at(11)) == 0.0
    assert backend.flow.admit("rated", 2, 60, at(12)) > 0


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_cron_cursor_move_reports_it_moved(backend: Backend, kind: Fault):
    assert backend.flow is not None
    backend.flow.mark_fired("nightly", None, at(0))
    fault(backend, "PutItem", kind)
    assert backend.flow.mark_fired("nightly", at(0), at(60))
    assert_injected(backend, "PutItem")
    assert backend.flow.last_fired("nightly") == at(60)
    assert not backend.flow.mark_fired("nightly", at(0), at(120))  # a genuine loser still loses


@pytest.mark.parametrize("key", [None, "order-1"])
@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_create_with_its_event_writes_the_event_once(
    backend: Backend, kind: Fault, key: str | None
):
    fault(backend, "TransactWriteItems", kind)
    run = backend.new_run(idempotency_key=key, events=[TimelineEvent(at(1), EventKind.TRIGGERED)])
    assert_injected(backend, "TransactWriteItems")
    assert backend.store.get_run(run.run_id) == run
    assert [e.kind for e in backend.store.list_events(run.run_id)] == [EventKind.TRIGGERED]
