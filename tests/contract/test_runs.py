"""Runs: create, read back, idempotency keys, listing, failing from outside."""

from __future__ import annotations

import datetime as dt

import pytest
from contract_backends import T0, Backend, at

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import (
    Checkpoint,
    EventKind,
    Fence,
    RunQuery,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import RunExistsError


def test_every_run_field_survives_create_and_get(backend: Backend):
    run = RunRecord(
        run_id="run_full",
        task_id="orders",
        status=RunStatus.SUSPENDED,
        payload='{"order_id":"o-1","items":[1,2,3]}',
        created_at=T0,
        updated_at=at(1.5),
        attempt=3,
        epoch=7,
        lease_owner="req-1:abcd",
        lease_expiry=at(60),
        wake_at=at(3600),
        queue="orders-queue",
        concurrency_key="tenant-9",
        priority=-4,
        tags=("vip", "eu", "vip-2"),
        idempotency_key="order-o-1",
        output='{"ok":true}',
        error=ErrorInfo("builtins.ValueError", "bad card", "Traceback (most recent call last):\n"),
        invocations=12,
        finished_at=at(2),
        expires_at=at(86400),
        last_delivery_error="UnknownTaskError: orders",
        replay_of="run_original",
    )
    created = backend.store.create_run(run, dt.timedelta(hours=1))
    assert created == run
    assert backend.store.get_run("run_full") == run


def test_minimal_run_reads_back_with_defaults(backend: Backend):
    run = backend.new_run()
    stored = backend.store.get_run(run.run_id)
    assert stored == run
    assert stored is not None
    assert stored.tags == ()
    assert stored.lease_owner is None
    assert stored.output is None
    assert stored.error is None


def test_unknown_run_reads_as_none(backend: Backend):
    assert backend.store.get_run("run_missing") is None


def test_creating_the_same_run_id_twice_is_refused(backend: Backend):
    run = backend.new_run()
    with pytest.raises(ValueError, match="already exists"):
        backend.store.create_run(run)


def test_a_second_create_of_a_run_id_raises_its_own_error_naming_the_run(backend: Backend):
    run = backend.new_run()
    with pytest.raises(RunExistsError, match=run.run_id) as raised:
        backend.store.create_run(run)
    assert raised.value.run_id == run.run_id
    assert backend.store.get_run(run.run_id) == run


def test_same_idempotency_key_returns_the_first_run(backend: Backend):
    first = backend.new_run(idempotency_key="k-1")
    again = backend.store.create_run(
        RunRecord(
            "run_second", "orders", RunStatus.QUEUED, "{}", at(100), at(100), idempotency_key="k-1"
        )
    )
    assert again == backend.store.get_run(first.run_id)
    assert backend.store.get_run("run_second") is None


def test_idempotency_key_within_its_ttl_returns_the_first_run(backend: Backend):
    first = backend.store.create_run(
        RunRecord("run_a", "orders", RunStatus.QUEUED, "{}", T0, T0, idempotency_key="k"),
        dt.timedelta(hours=1),
    )
    again = backend.store.create_run(
        RunRecord(
            "run_b", "orders", RunStatus.QUEUED, "{}", at(1800), at(1800), idempotency_key="k"
        ),
        dt.timedelta(hours=1),
    )
    assert again.run_id == first.run_id


def test_expired_idempotency_key_creates_a_new_run(backend: Backend):
    backend.store.create_run(
        RunRecord("run_a", "orders", RunStatus.QUEUED, "{}", T0, T0, idempotency_key="k"),
        dt.timedelta(hours=1),
    )
    fresh = RunRecord(
        "run_b", "orders", RunStatus.QUEUED, "{}", at(7200), at(7200), idempotency_key="k"
    )
    assert backend.store.create_run(fresh, dt.timedelta(hours=1)) == fresh
    assert backend.store.get_run("run_b") == fresh
    # ...and the new claim now holds the key.
    third = RunRecord(
        "run_c", "orders", RunStatus.QUEUED, "{}", at(7300), at(7300), idempotency_key="k"
    )
    assert backend.store.create_run(third).run_id == "run_b"


def test_idempotency_keys_are_scoped_by_task(backend: Backend):
    backend.new_run(run_id="run_a", task_id="a#b", idempotency_key="c")
    other = backend.new_run(run_id="run_b", task_id="a", idempotency_key="b#c")
    assert other.run_id == "run_b"
    assert backend.store.get_run("run_b") is not None


def test_runs_of_a_task_list_newest_first(backend: Backend):
    oldest = backend.new_run(task_id="mail")
    backend.new_run(task_id="other")
    middle = backend.new_run(task_id="mail")
    newest = backend.new_run(task_id="mail")
    listed = backend.store.list_runs(RunQuery(task_id="mail"))
    assert [r.run_id for r in listed] == [newest.run_id, middle.run_id, oldest.run_id]
    assert listed[0] == backend.store.get_run(newest.run_id)
    limited = backend.store.list_runs(RunQuery(task_id="mail", limit=2))
    assert [r.run_id for r in limited] == [newest.run_id, middle.run_id]


def test_runs_in_a_status_list_newest_first(backend: Backend):
    queued_old = backend.new_run()
    done = backend.new_run(status=RunStatus.COMPLETED, finished_at=at(50))
    queued_new = backend.new_run()
    assert [r.run_id for r in backend.store.list_runs(RunQuery(status=RunStatus.QUEUED))] == [
        queued_new.run_id,
        queued_old.run_id,
    ]
    assert [r.run_id for r in backend.store.list_runs(RunQuery(status=RunStatus.COMPLETED))] == [
        done.run_id
    ]


def test_running_runs_list_by_creation_not_by_lease_expiry(backend: Backend):
    first = backend.new_run()
    second = backend.new_run()
    # The older run holds the later-expiring lease.
    backend.store.take_lease(first.run_id, 0, "owner-1", at(900), at(10))
    backend.store.take_lease(second.run_id, 0, "owner-2", at(100), at(10))
    listed = backend.store.list_runs(RunQuery(status=RunStatus.RUNNING))
    assert [r.run_id for r in listed] == [second.run_id, first.run_id]


def test_runs_filtered_by_task_and_status(backend: Backend):
    wanted = backend.new_run(task_id="mail")
    backend.new_run(task_id="mail", status=RunStatus.FAILED, finished_at=at(9))
    backend.new_run(task_id="other")
    listed = backend.store.list_runs(RunQuery(task_id="mail", status=RunStatus.QUEUED))
    assert [r.run_id for r in listed] == [wanted.run_id]


def test_all_runs_list_newest_first_across_statuses(backend: Backend):
    a = backend.new_run()
    b = backend.new_run(status=RunStatus.COMPLETED, finished_at=at(20))
    c = backend.new_run()
    backend.store.take_lease(c.run_id, 0, "owner", at(500), at(10))
    d = backend.new_run(status=RunStatus.SUSPENDED, wake_at=at(1))
    listed = backend.store.list_runs(RunQuery(limit=3))
    assert [r.run_id for r in listed] == [d.run_id, c.run_id, b.run_id]
    assert len(backend.store.list_runs(RunQuery())) == 4
    assert a.run_id in {r.run_id for r in backend.store.list_runs(RunQuery())}


def test_failing_a_run_from_outside_ends_it_and_records_why(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner", at(20), at(5))  # its holder died at 20
    event = TimelineEvent(at(30), EventKind.DEAD_LETTERED, "dead-lettered")
    error = ErrorInfo("durable_lambda.DeadLettered", "5 deliveries")
    failed = backend.store.fail_run(run.run_id, error, event, epoch=0)
    assert failed is not None
    assert failed == backend.store.get_run(run.run_id)
    assert failed.status is RunStatus.FAILED
    assert failed.error == error
    assert failed.epoch == 1
    assert (failed.lease_owner, failed.lease_expiry) == (None, None)
    assert failed.finished_at == at(30)
    assert backend.store.list_events(run.run_id) == [event]
    assert backend.store.list_runs(RunQuery(status=RunStatus.FAILED))[0].run_id == run.run_id
    assert backend.store.list_runs(RunQuery(status=RunStatus.RUNNING)) == []


def test_failing_a_finished_or_unknown_run_changes_nothing(backend: Backend):
    done = backend.new_run(status=RunStatus.COMPLETED, output='"x"', finished_at=at(3))
    event = TimelineEvent(at(30), EventKind.DEAD_LETTERED)
    assert backend.store.fail_run(done.run_id, ErrorInfo("E", "m"), event, epoch=0) is None
    assert backend.store.get_run(done.run_id) == done
    assert backend.store.list_events(done.run_id) == []
    assert backend.store.fail_run("run_missing", ErrorInfo("E", "m"), event, epoch=0) is None


def test_a_failed_message_of_an_older_epoch_fails_nothing(backend: Backend):
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, "owner", at(20), at(5))
    waiting = backend.store.checkpoint(
        run.run_id,
        Fence("owner", 0),
        Checkpoint(status=RunStatus.SUSPENDED, wake_at=at(40), new_epoch=True),
    )
    event = TimelineEvent(at(30), EventKind.DEAD_LETTERED)
    assert backend.store.fail_run(run.run_id, ErrorInfo("E", "m"), event, epoch=0) is None
    assert backend.store.get_run(run.run_id) == waiting
    assert EventKind.DEAD_LETTERED not in {e.kind for e in backend.store.list_events(run.run_id)}


def test_a_run_held_by_a_live_invocation_is_not_failed_from_outside(backend: Backend):
    run = backend.new_run()
    taken = backend.store.take_lease(run.run_id, 0, "owner", at(60), at(5))
    event = TimelineEvent(at(30), EventKind.DEAD_LETTERED)  # a duplicate of epoch 0 gave up
    assert backend.store.fail_run(run.run_id, ErrorInfo("E", "m"), event, epoch=0) is None
    assert backend.store.get_run(run.run_id) == taken.run
    failed = backend.store.fail_run(
        run.run_id, ErrorInfo("E", "m"), TimelineEvent(at(61), EventKind.DEAD_LETTERED), epoch=0
    )
    assert failed is not None  # once its lease has expired, the holder is dead
    assert failed.status is RunStatus.FAILED


def test_delivery_error_is_remembered_on_the_run(backend: Backend):
    run = backend.new_run()
    backend.store.note_delivery_error(run.run_id, "UnknownTaskError: orders")
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert stored.last_delivery_error == "UnknownTaskError: orders"
    backend.store.note_delivery_error("run_missing", "ignored")
    assert backend.store.get_run("run_missing") is None
