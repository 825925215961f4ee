"""A child's nudge (a message of ANY_EPOCH) and the parent/child links on run records."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda.engine.records import (
    ANY_EPOCH,
    Checkpoint,
    EventKind,
    Fence,
    LeaseOutcome,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.state import RunStatus


def _suspended_on_children(backend: Backend, *, wake: int = 3600) -> str:
    """A run taken at epoch 0, then suspended on its children (epoch 1, far wake time)."""
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    backend.store.checkpoint(
        run.run_id,
        Fence("owner-a", 0),
        Checkpoint(
            status=RunStatus.SUSPENDED, wake_at=at(wake), new_epoch=True, waiting_children=True
        ),
    )
    return run.run_id


def test_the_links_of_a_child_run_round_trip(backend: Backend):
    run = backend.new_run(parent_run_id="run_parent", root_run_id="run_root", depth=2)
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.parent_run_id, stored.root_run_id, stored.depth) == ("run_parent", "run_root", 2)


def test_a_nudge_takes_a_run_suspended_on_its_children_before_its_wake_time(backend: Backend):
    run_id = _suspended_on_children(backend)
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert stored.waiting_children
    taken = backend.store.take_lease(run_id, ANY_EPOCH, "owner-b", at(120), at(20))
    assert taken.outcome is LeaseOutcome.TAKEN
    assert taken.run is not None
    # Taken at its own epoch (the fence of the invocation), the flag cleared.
    assert (taken.run.status, taken.run.epoch, taken.run.lease_owner) == (
        RunStatus.RUNNING,
        1,
        "owner-b",
    )
    assert not taken.run.waiting_children
    assert backend.store.get_run(run_id) == taken.run


def test_a_nudge_is_busy_while_the_parent_runs_and_takes_it_once_suspended(backend: Backend):
    """The race: the child ends before the parent checkpointed its suspension."""
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    early = backend.store.take_lease(run.run_id, ANY_EPOCH, "owner-b", at(120), at(11))
    assert early.outcome is LeaseOutcome.BUSY
    backend.store.checkpoint(
        run.run_id,
        Fence("owner-a", 0),
        Checkpoint(
            status=RunStatus.SUSPENDED, wake_at=at(3600), new_epoch=True, waiting_children=True
        ),
    )
    again = backend.store.take_lease(run.run_id, ANY_EPOCH, "owner-b", at(120), at(12))
    assert again.outcome is LeaseOutcome.TAKEN


def test_a_nudge_to_a_parent_whose_holder_died_is_stale(backend: Backend):
    """The recovery of the dead invocation replays the parent, which reads its children."""
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    taken = backend.store.take_lease(run.run_id, ANY_EPOCH, "owner-b", at(120), at(61))
    assert taken.outcome is LeaseOutcome.STALE
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert stored.lease_owner == "owner-a"


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.SUSPENDED, RunStatus.COMPLETED])
def test_a_nudge_is_stale_for_a_run_not_waiting_on_children(backend: Backend, status: RunStatus):
    run = backend.new_run(status=status)
    taken = backend.store.take_lease(run.run_id, ANY_EPOCH, "owner", at(60), at(10))
    assert taken.outcome is LeaseOutcome.STALE
    assert backend.store.get_run(run.run_id) == run


def test_a_second_nudge_after_the_take_is_busy_and_the_fallback_message_still_works(
    backend: Backend,
):
    run_id = _suspended_on_children(backend)
    backend.store.take_lease(run_id, ANY_EPOCH, "owner-b", at(120), at(20))
    duplicate = backend.store.take_lease(run_id, ANY_EPOCH, "owner-c", at(120), at(21))
    assert duplicate.outcome is LeaseOutcome.BUSY
    backend.store.checkpoint(
        run_id, Fence("owner-b", 1), Checkpoint(status=RunStatus.COMPLETED, new_epoch=False)
    )
    late = backend.store.take_lease(run_id, ANY_EPOCH, "owner-c", at(120), at(22))
    assert late.outcome is LeaseOutcome.STALE


def test_many_runs_are_read_in_order_with_none_for_missing_ones(backend: Backend):
    runs = [backend.new_run() for _ in range(3)]
    ids = [runs[2].run_id, "run_missing", runs[0].run_id, runs[2].run_id]
    got = backend.store.get_runs(ids)
    assert got == [runs[2], None, runs[0], runs[2]]
    assert backend.store.get_runs([]) == []


def _child(backend: Backend, index: int, key: str) -> tuple[RunRecord, TimelineEvent]:
    run = RunRecord(
        run_id=f"run_child_{backend.name}_{key}_{index:04d}",
        task_id="kid",
        status=RunStatus.QUEUED,
        payload=str(index),
        created_at=at(1),
        updated_at=at(1),
        queue="kids",
        idempotency_key=f"run_parent:kids#0:{key}",
        parent_run_id="run_parent",
        root_run_id="run_parent",
        depth=1,
    )
    return run, TimelineEvent(at(1), EventKind.TRIGGERED, "task kid by run run_parent")


def test_children_are_created_with_their_events_and_a_replay_finds_the_same_runs(
    backend: Backend,
):
    first = [_child(backend, i, str(i)) for i in range(40)]
    created = backend.store.create_runs([r for r, _ in first], [e for _, e in first])
    assert [r.run_id for r in created] == [r.run_id for r, _ in first]
    stored = backend.store.get_runs([r.run_id for r, _ in first])
    assert [r.payload if r else None for r in stored] == [str(i) for i in range(40)]
    assert all(r is not None and r.parent_run_id == "run_parent" for r in stored)
    assert [e.kind for e in backend.store.list_events(first[7][0].run_id)] == ["triggered"]
    # A replayed trigger: same keys, fresh run ids, plus five children not created yet.
    again = [_child(backend, i + 1000, str(i)) for i in range(45)]
    found = backend.store.create_runs([r for r, _ in again], [e for _, e in again])
    assert [r.run_id for r in found[:40]] == [r.run_id for r, _ in first]
    assert [r.run_id for r in found[40:]] == [r.run_id for r, _ in again[40:]]
    assert backend.store.get_run(again[0][0].run_id) is None  # no second child for a key
    assert len(backend.store.list_events(first[0][0].run_id)) == 1


def _suspended_awaiting(backend: Backend, awaited: set[str], wake: int) -> str:
    """A run suspended on its children, ``awaited`` still running; a nudge takes it at ``wake``."""
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner-a", at(60), at(10))
    backend.store.checkpoint(
        run.run_id,
        Fence("owner-a", 0),
        Checkpoint(
            status=RunStatus.SUSPENDED,
            wake_at=at(3600),
            new_epoch=True,
            waiting_children=True,
            awaited_children=frozenset(awaited),
            awaited_wake=wake,
        ),
    )
    return run.run_id


def test_each_childs_end_is_counted_once_and_only_the_last_one_wakes_the_parent(
    backend: Backend,
):
    run_id = _suspended_awaiting(backend, {"run_a", "run_b", "run_c"}, wake=0)
    store = backend.store
    # A nudge naming its child does not take a parent keeping a count: it is counted first.
    refused = store.take_lease(run_id, ANY_EPOCH, "owner-x", at(120), at(15), counted=True)
    assert refused.outcome is LeaseOutcome.STALE
    assert refused.run is not None
    assert refused.run.awaited_wake == 0
    assert store.note_child_end(run_id, "run_a") is False
    assert store.note_child_end(run_id, "run_a") is False  # a duplicate nudge counts nothing
    assert store.note_child_end(run_id, "run_x") is False  # not a child it waits on
    stored = store.get_run(run_id)
    assert stored is not None
    assert (stored.awaited_children, stored.awaited_wake) == (frozenset({"run_b", "run_c"}), 0)
    assert store.note_child_end(run_id, "run_b") is False
    assert store.note_child_end(run_id, "run_c") is True
    # Its duplicate still says so: the worker of the first may have died before the take.
    assert store.note_child_end(run_id, "run_c") is True
    taken = store.take_lease(run_id, ANY_EPOCH, "owner-b", at(120), at(20))
    assert taken.outcome is LeaseOutcome.TAKEN
    assert taken.run is not None
    assert (taken.run.awaited_children, taken.run.awaited_wake) == (frozenset(), None)
    # Taken, the count is no longer in force: nudges try the lease (BUSY while it runs).
    assert store.note_child_end(run_id, "run_a") is True
    assert store.note_child_end("run_missing", "run_a") is False


def test_a_count_wakes_when_the_smallest_wait_may_have_ended(backend: Backend):
    """Waits on {a} and {b, c}: the first end of any of the three may end the first wait."""
    run_id = _suspended_awaiting(backend, {"run_a", "run_b", "run_c"}, wake=2)
    assert backend.store.note_child_end(run_id, "run_b") is True


def test_a_suspension_without_children_waits_clears_the_count(backend: Backend):
    run_id = _suspended_awaiting(backend, {"run_a"}, wake=0)
    backend.store.take_lease(run_id, 1, "owner-b", at(7200), at(3601))
    backend.store.checkpoint(
        run_id,
        Fence("owner-b", 1),
        Checkpoint(status=RunStatus.SUSPENDED, wake_at=at(9000), new_epoch=True),
    )
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert (stored.waiting_children, stored.awaited_children, stored.awaited_wake) == (
        False,
        frozenset(),
        None,
    )
