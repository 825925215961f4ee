"""The journal and checkpoints: what an invocation records, and what a checkpoint leaves."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, JournalEntry
from durable_lambda.engine.metadata import encode_doc
from durable_lambda.engine.records import (
    Checkpoint,
    EventKind,
    Fence,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import LeaseLostError

OWNER = "owner-a"


def held_run(backend: Backend) -> tuple[RunRecord, Fence]:
    run = backend.new_run()
    taken = backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    assert taken.run is not None
    return taken.run, Fence(OWNER, 0)


def step(seq: int, status: EntryStatus = EntryStatus.COMPLETED, **changes) -> JournalEntry:
    fields = {
        "seq": seq,
        "name": f"step-{seq}",
        "occurrence": 0,
        "kind": EntryKind.STEP,
        "status": status,
        "result": f'{{"n":{seq}}}' if status is EntryStatus.COMPLETED else None,
        "attempts": 1,
        "started_at": at(20 + seq),
        "ended_at": at(21 + seq),
    }
    fields.update(changes)
    return JournalEntry(**fields)


def test_journal_loads_in_position_order_with_every_field(backend: Backend):
    run, fence = held_run(backend)
    failed = step(
        1,
        EntryStatus.FAILED,
        error=ErrorInfo("builtins.KeyError", "'sku'", "Traceback...\n  KeyError: 'sku'"),
        attempts=3,
    )
    wait = JournalEntry(
        2, "$wait", 0, EntryKind.WAIT, EntryStatus.WAITING, started_at=at(30), wake_at=at(9000)
    )
    for entry in (wait, failed, step(0)):
        backend.store.record_entry(run.run_id, fence, entry)
    assert backend.store.load_journal(run.run_id) == [step(0), failed, wait]


def test_journal_positions_sort_numerically_past_nine(backend: Backend):
    run, fence = held_run(backend)
    for seq in (10, 9, 100, 0):
        backend.store.record_entry(run.run_id, fence, step(seq))
    assert [e.seq for e in backend.store.load_journal(run.run_id)] == [0, 9, 10, 100]


def test_a_retrying_step_is_overwritten_by_its_completion(backend: Backend):
    run, fence = held_run(backend)
    retrying = step(0, EntryStatus.RETRYING, error=ErrorInfo("E", "flaky"), wake_at=at(60))
    backend.store.record_entry(run.run_id, fence, retrying)
    done = step(0, attempts=2)
    backend.store.record_entry(run.run_id, fence, done)
    assert backend.store.load_journal(run.run_id) == [done]


def test_a_waiting_entry_is_overwritten_when_the_wait_ends(backend: Backend):
    run, fence = held_run(backend)
    waiting = JournalEntry(0, "$wait", 0, EntryKind.WAIT, EntryStatus.WAITING, wake_at=at(60))
    done = JournalEntry(
        0, "$wait", 0, EntryKind.WAIT, EntryStatus.COMPLETED, wake_at=at(60), ended_at=at(61)
    )
    backend.store.record_entry(run.run_id, fence, waiting)
    backend.store.record_entry(run.run_id, fence, done)
    assert backend.store.load_journal(run.run_id) == [done]


@pytest.mark.parametrize("final", [EntryStatus.COMPLETED, EntryStatus.FAILED])
def test_a_final_entry_is_never_overwritten(backend: Backend, final: EntryStatus):
    run, fence = held_run(backend)
    first = step(0, final, error=ErrorInfo("E", "m") if final is EntryStatus.FAILED else None)
    backend.store.record_entry(run.run_id, fence, first)
    with pytest.raises(LeaseLostError, match="already final"):
        backend.store.record_entry(run.run_id, fence, step(0, result='"second"'))
    assert backend.store.load_journal(run.run_id) == [first]


def test_suspending_with_a_new_epoch_releases_the_lease(backend: Backend):
    run, fence = held_run(backend)
    waiting = JournalEntry(0, "$wait", 0, EntryKind.WAIT, EntryStatus.WAITING, wake_at=at(600))
    events = (
        TimelineEvent(at(10), EventKind.INVOCATION_STARTED, "invocation 1"),
        TimelineEvent(at(12), EventKind.SUSPENDED, "wait: $wait#0", delay=588.0),
    )
    checkpoint = Checkpoint(
        status=RunStatus.SUSPENDED,
        wake_at=at(600),
        new_epoch=True,
        entries=(waiting,),
        events=events,
    )
    after = backend.store.checkpoint(run.run_id, fence, checkpoint)
    assert after == backend.store.get_run(run.run_id)
    assert after.status is RunStatus.SUSPENDED
    assert after.epoch == 1
    assert (after.lease_owner, after.lease_expiry) == (None, None)
    assert after.wake_at == at(600)
    assert after.updated_at == at(12)
    assert after.finished_at is None
    assert backend.store.load_journal(run.run_id) == [waiting]
    assert backend.store.list_events(run.run_id) == list(events)
    # Only a message of the new epoch may resume it, once it is due.
    assert backend.store.take_lease(run.run_id, 0, "x", at(900), at(700)).outcome.value == "stale"
    assert backend.store.take_lease(run.run_id, 1, "x", at(900), at(700)).outcome.value == "taken"


def test_completing_stores_the_output_and_finishes_the_run(backend: Backend):
    run, fence = held_run(backend)
    events = (
        TimelineEvent(at(10), EventKind.INVOCATION_STARTED),
        TimelineEvent(at(15), EventKind.COMPLETED),
    )
    after = backend.store.checkpoint(
        run.run_id,
        fence,
        Checkpoint(
            status=RunStatus.COMPLETED,
            output='{"receipt":"r-1"}',
            events=events,
            entries=(step(0),),
        ),
    )
    assert after == backend.store.get_run(run.run_id)
    assert after.status is RunStatus.COMPLETED
    assert after.output == '{"receipt":"r-1"}'
    assert after.finished_at == at(15)
    assert after.lease_owner is None
    assert after.epoch == 0
    assert after.payload == run.payload


def test_failing_records_the_error_and_a_run_retry_the_attempt(backend: Backend):
    run, fence = held_run(backend)
    error = ErrorInfo("builtins.RuntimeError", "boom", "Traceback ...")
    retry = backend.store.checkpoint(
        run.run_id,
        fence,
        Checkpoint(
            status=RunStatus.SUSPENDED, wake_at=at(40), new_epoch=True, error=error, attempt=2
        ),
    )
    assert (retry.attempt, retry.error, retry.epoch) == (2, error, 1)
    assert retry == backend.store.get_run(run.run_id)
    backend.store.take_lease(run.run_id, 1, "owner-b", at(400), at(40))
    final = ErrorInfo("builtins.RuntimeError", "boom again")
    failed = backend.store.checkpoint(
        run.run_id, Fence("owner-b", 1), Checkpoint(status=RunStatus.FAILED, error=final)
    )
    assert (failed.status, failed.error, failed.attempt) == (RunStatus.FAILED, final, 2)
    assert failed.finished_at == failed.updated_at
    assert failed == backend.store.get_run(run.run_id)


def test_a_running_checkpoint_keeps_the_lease(backend: Backend):
    run, fence = held_run(backend)
    kept = backend.store.checkpoint(
        run.run_id, fence, Checkpoint(status=RunStatus.RUNNING, entries=(step(0),))
    )
    assert (kept.status, kept.lease_owner, kept.lease_expiry) == (RunStatus.RUNNING, OWNER, at(300))
    assert kept == backend.store.get_run(run.run_id)
    done = backend.store.checkpoint(
        run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output="1")
    )
    assert done.status is RunStatus.COMPLETED


def test_a_checkpoint_that_would_overwrite_a_final_entry_writes_nothing(backend: Backend):
    run, fence = held_run(backend)
    backend.store.record_entry(run.run_id, fence, step(0))
    checkpoint = Checkpoint(
        status=RunStatus.COMPLETED,
        output="1",
        entries=(step(1), step(0, result='"other"')),
        events=(TimelineEvent(at(11), EventKind.COMPLETED),),
    )
    with pytest.raises(LeaseLostError, match="already final"):
        backend.store.checkpoint(run.run_id, fence, checkpoint)
    assert backend.store.load_journal(run.run_id) == [step(0)]
    assert backend.store.list_events(run.run_id) == []
    assert backend.store.get_run(run.run_id) == run


def test_a_checkpoint_from_another_store_instance_applies_the_same(backend: Backend):
    run, fence = held_run(backend)
    other = backend.other_store()
    after = other.checkpoint(
        run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output='"x"')
    )
    assert after == backend.store.get_run(run.run_id)
    assert after.output == '"x"'


def test_a_long_wait_checkpoint_indexes_a_timer_for_the_new_epoch(backend: Backend):
    run, fence = held_run(backend)
    wake = at(7200)
    backend.store.checkpoint(
        run.run_id,
        fence,
        Checkpoint(status=RunStatus.SUSPENDED, wake_at=wake, new_epoch=True, timer=True),
    )
    assert backend.store.due_timers(at(7199)) == []
    timer = Timer(run.run_id, 1, wake)
    assert backend.store.due_timers(wake) == [timer]
    backend.store.delete_timer(timer)
    backend.store.delete_timer(timer)  # idempotent
    assert backend.store.due_timers(at(10**6)) == []


def test_timers_come_due_earliest_first_up_to_the_limit(backend: Backend):
    timers = [Timer(f"run_{i}", i % 3, at(1000 * (10 - i))) for i in range(10)]
    for timer in timers:
        backend.store.add_timer(timer)
    due = backend.store.due_timers(at(5000))
    assert due == sorted((t for t in timers if t.wake_at <= at(5000)), key=lambda t: t.wake_at)
    assert (
        backend.store.due_timers(at(10**5), limit=3) == sorted(timers, key=lambda t: t.wake_at)[:3]
    )


def test_a_timer_far_in_the_past_is_still_due(backend: Backend):
    # A scheduler that was down for a year must still find it.
    timer = Timer("run_old", 0, at(-365 * 86400))
    backend.store.add_timer(timer)
    assert backend.store.due_timers(at(0)) == [timer]


def test_events_list_oldest_first(backend: Backend):
    run = backend.new_run()
    late = TimelineEvent(at(50), EventKind.SUSPENDED, "wait", delay=1.5)
    early = TimelineEvent(at(5), EventKind.TRIGGERED, "task orders")
    backend.store.add_events(run.run_id, [late])
    backend.store.add_events(run.run_id, [early])
    same_time = [TimelineEvent(at(60), EventKind.INVOCATION_STARTED, f"{i}") for i in range(30)]
    backend.store.add_events(run.run_id, same_time)
    assert backend.store.list_events(run.run_id) == [early, late, *same_time]
    assert backend.store.list_events("run_missing") == []


def test_entries_keep_their_scope_and_position(backend: Backend):
    run, fence = held_run(backend)
    nested = step(1, scope="t0/t2", position=3, name="fetch", occurrence=1)
    root = step(0, position=0)
    for entry in (nested, root):
        backend.store.record_entry(run.run_id, fence, entry)
    loaded = backend.store.load_journal(run.run_id)
    assert loaded == [root, nested]
    assert loaded[1].key == "t0/t2/fetch#1"
    assert loaded[1].slot == ("t0/t2", 3)


def test_entries_written_before_scopes_existed_load_in_the_root_scope(backend: Backend):
    run, fence = held_run(backend)
    backend.store.record_entry(run.run_id, fence, step(4))
    (loaded,) = backend.store.load_journal(run.run_id)
    assert (loaded.scope, loaded.position, loaded.slot) == ("", None, ("", 4))


def test_a_started_entry_round_trips_and_is_overwritten_by_its_outcome(backend: Backend):
    run, fence = held_run(backend)
    started = step(0, EntryStatus.STARTED, ended_at=None)
    backend.store.record_entry(run.run_id, fence, started)
    assert backend.store.load_journal(run.run_id) == [started]
    done = step(0)
    backend.store.record_entry(run.run_id, fence, done)
    assert backend.store.load_journal(run.run_id) == [done]


def test_metadata_rides_on_a_record_and_on_a_checkpoint_and_reads_back(backend: Backend):
    run, fence = held_run(backend)
    first = encode_doc({"progress": 0.4, "log": ["a"]}, {"m:": 2})
    backend.store.record_entry(run.run_id, fence, step(0), first)
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.metadata, stored.metadata_marks) == ({"progress": 0.4, "log": ["a"]}, {"m:": 2})
    second = encode_doc({"progress": 1.0, "pages": 3}, {"m:": 4, "log:t0": 1})
    done = backend.store.checkpoint(
        run.run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output="1", metadata=second)
    )
    assert done.metadata == {"progress": 1.0, "pages": 3}
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert (stored.metadata, stored.metadata_marks) == (
        {"progress": 1.0, "pages": 3},
        {"m:": 4, "log:t0": 1},
    )
    assert backend.store.load_journal(run.run_id) == [step(0)]
