"""Leases: who may take a run, when, and what a lost lease forbids."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.records import Checkpoint, Fence, LeaseOutcome
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import LeaseLostError, RunNotFoundError

STEP = JournalEntry(0, "charge", 0, EntryKind.STEP, EntryStatus.COMPLETED, result='"ok"')


def test_a_queued_run_is_taken_by_a_message_of_its_epoch(backend: Backend):
    run = backend.new_run()
    taken = backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    assert taken.outcome is LeaseOutcome.TAKEN
    assert taken.run is not None
    assert taken.run.status is RunStatus.RUNNING
    assert (taken.run.lease_owner, taken.run.lease_expiry) == ("owner-a", at(60))
    assert taken.run.invocations == 1
    assert taken.run.updated_at == at(10)
    assert taken.run.payload == run.payload
    assert backend.store.get_run(run.run_id) == taken.run


def test_an_unknown_run_is_not_found(backend: Backend):
    taken = backend.store.take_lease("run_missing", 0, "owner", at(60), at(10))
    assert taken.outcome is LeaseOutcome.NOT_FOUND
    assert taken.run is None


def test_a_message_of_another_epoch_is_stale(backend: Backend):
    run = backend.new_run(epoch=2)
    for epoch in (1, 3):
        taken = backend.store.take_lease(run.run_id, epoch, "owner", at(60), at(10))
        assert taken.outcome is LeaseOutcome.STALE
        assert taken.run == run
    assert backend.store.get_run(run.run_id) == run


@pytest.mark.parametrize(
    "status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.EXPIRED]
)
def test_a_finished_run_is_stale_for_any_message(backend: Backend, status: RunStatus):
    run = backend.new_run(status=status, finished_at=at(5))
    taken = backend.store.take_lease(run.run_id, 0, "owner", at(60), at(10))
    assert taken.outcome is LeaseOutcome.STALE
    assert backend.store.get_run(run.run_id) == run


def test_a_run_held_by_a_live_invocation_is_busy(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    busy = backend.store.take_lease(run.run_id, 0, "owner-b", at(120), at(59))
    assert busy.outcome is LeaseOutcome.BUSY
    assert busy.run is not None
    assert busy.run.lease_owner == "owner-a"


def test_a_run_before_its_wake_time_is_early(backend: Backend):
    run = backend.new_run(status=RunStatus.SUSPENDED, wake_at=at(100))
    early = backend.store.take_lease(run.run_id, 0, "owner", at(200), at(99))
    assert early.outcome is LeaseOutcome.EARLY
    assert early.run == run
    on_time = backend.store.take_lease(run.run_id, 0, "owner", at(200), at(100))
    assert on_time.outcome is LeaseOutcome.TAKEN


def test_an_expired_lease_is_taken_over_by_the_next_message(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    takeover = backend.store.take_lease(run.run_id, 0, "owner-b", at(200), at(60))
    assert takeover.outcome is LeaseOutcome.TAKEN
    assert takeover.run is not None
    assert takeover.run.lease_owner == "owner-b"
    assert takeover.run.invocations == 2


def test_writes_of_an_owner_whose_lease_was_taken_over_are_refused(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    backend.store.take_lease(run.run_id, 0, "owner-b", at(200), at(61))
    stale = Fence("owner-a", 0)
    with pytest.raises(LeaseLostError, match="owner-b"):
        backend.store.record_entry(run.run_id, stale, STEP)
    with pytest.raises(LeaseLostError):
        backend.store.checkpoint(
            run.run_id, stale, Checkpoint(status=RunStatus.COMPLETED, output="1")
        )
    assert backend.store.load_journal(run.run_id) == []
    current = backend.store.get_run(run.run_id)
    assert current is not None
    assert (current.status, current.lease_owner) == (RunStatus.RUNNING, "owner-b")
    # The new holder writes normally.
    backend.store.record_entry(run.run_id, Fence("owner-b", 0), STEP)
    assert backend.store.load_journal(run.run_id) == [STEP]


def test_writes_fenced_by_a_past_epoch_are_refused(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    backend.store.checkpoint(
        run.run_id, Fence("owner-a", 0), Checkpoint(status=RunStatus.SUSPENDED, new_epoch=True)
    )
    backend.store.take_lease(run.run_id, 1, "owner-a", at(160), at(100))
    with pytest.raises(LeaseLostError):
        backend.store.record_entry(run.run_id, Fence("owner-a", 0), STEP)
    backend.store.record_entry(run.run_id, Fence("owner-a", 1), STEP)


def test_writes_after_the_lease_was_released_are_refused(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    fence = Fence("owner-a", 0)
    backend.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.QUEUED))
    with pytest.raises(LeaseLostError):
        backend.store.record_entry(run.run_id, fence, STEP)
    with pytest.raises(LeaseLostError):
        backend.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED))


def test_fenced_writes_to_an_unknown_run_raise_not_found(backend: Backend):
    fence = Fence("owner", 0)
    with pytest.raises(RunNotFoundError):
        backend.store.record_entry("run_missing", fence, STEP)
    with pytest.raises(RunNotFoundError):
        backend.store.checkpoint("run_missing", fence, Checkpoint(status=RunStatus.COMPLETED))


def test_expired_leases_are_listed_for_recovery(backend: Backend):
    dead = backend.new_run()
    alive = backend.new_run()
    backend.new_run()  # queued, holds no lease
    backend.store.take_lease(dead.run_id, 0, "owner-a", at(50), at(10))
    backend.store.take_lease(alive.run_id, 0, "owner-b", at(500), at(10))
    assert backend.store.expired_leases(at(49)) == []
    expired = backend.store.expired_leases(at(50))
    assert [r.run_id for r in expired] == [dead.run_id]
    assert expired[0] == backend.store.get_run(dead.run_id)
    assert {r.run_id for r in backend.store.expired_leases(at(1000))} == {dead.run_id, alive.run_id}
    assert len(backend.store.expired_leases(at(1000), limit=1)) == 1


def test_a_released_lease_is_not_listed_as_expired(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner", at(50), at(10))
    backend.store.checkpoint(
        run.run_id, Fence("owner", 0), Checkpoint(status=RunStatus.SUSPENDED, new_epoch=True)
    )
    assert backend.store.expired_leases(at(1000)) == []


def test_overdue_queued_and_suspended_runs_are_listed_as_stranded(backend: Backend):
    queued = backend.new_run()  # created at T0+1, due then
    later = backend.new_run(wake_at=at(500))  # a delayed trigger, due at T0+500
    running = backend.new_run()
    backend.store.take_lease(running.run_id, 0, "owner", at(900), at(10))
    suspended = backend.new_run()
    backend.store.take_lease(suspended.run_id, 0, "owner", at(900), at(10))
    backend.store.checkpoint(
        suspended.run_id,
        Fence("owner", 0),
        Checkpoint(status=RunStatus.SUSPENDED, new_epoch=True, wake_at=at(100)),
    )
    assert [r.run_id for r in backend.store.stranded_runs(at(1))] == []
    assert [r.run_id for r in backend.store.stranded_runs(at(101))] == [
        queued.run_id,
        suspended.run_id,
    ]
    stranded = backend.store.stranded_runs(at(1000))
    assert [r.run_id for r in stranded] == [queued.run_id, suspended.run_id, later.run_id]
    assert stranded[1].epoch == 1  # the epoch a resent message must carry
    backend.store.take_lease(queued.run_id, 0, "owner", at(900), at(200))
    assert queued.run_id not in {r.run_id for r in backend.store.stranded_runs(at(1000))}
