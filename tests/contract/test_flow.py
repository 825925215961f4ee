"""Flow control: counters that know their holders, parked runs, rate windows, cron cursors."""

from __future__ import annotations

import datetime as dt

import pytest
from contract_backends import Backend, FlowStore, at

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import (
    Checkpoint,
    EventKind,
    Fence,
    LeaseOutcome,
    Park,
    RunQuery,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.slots import AcquireOutcome, Holder, SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    ConfigurationError,
    LeaseLostError,
    ReleaseNotFoldedError,
    SlotAvailableError,
)

KEY = SlotKey("emails")
OWNER = "owner-a"


def flow(backend: Backend) -> FlowStore:
    assert backend.flow is not None
    return backend.flow


def acquire(backend: Backend, run_id: str, limit: int | None = 2, expiry: float = 300, key=KEY):
    return flow(backend).acquire(key, run_id, at(expiry), limit)


def running(backend: Backend, **changes) -> RunRecord:
    """A run taken by ``OWNER`` at epoch 0."""
    run = backend.new_run(**changes)
    taken = backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    assert taken.outcome is LeaseOutcome.TAKEN
    assert taken.run is not None
    return taken.run


def park(
    backend: Backend,
    run: RunRecord,
    *,
    priority: int = 0,
    enqueued: float = 0,
    limit: int | None = 2,
    key: SlotKey = KEY,
) -> RunRecord:
    return backend.store.checkpoint(
        run.run_id,
        Fence(OWNER, run.epoch),
        Checkpoint(
            status=RunStatus.WAITING_FOR_SLOT,
            new_epoch=True,
            park=Park(key, priority, at(enqueued), limit),
        ),
    )


def fill(backend: Backend, count: int = 2, key: SlotKey = KEY) -> list[str]:
    holders = [f"holder_{key.id}_{i}" for i in range(count)]
    for run_id in holders:
        assert acquire(backend, run_id, limit=count, key=key).outcome is AcquireOutcome.ACQUIRED
    return holders


# -- acquire and release ---------------------------------------------------------------------


def test_acquire_succeeds_up_to_the_limit_then_is_full(backend: Backend):
    first = acquire(backend, "run_a")
    assert first.outcome is AcquireOutcome.ACQUIRED
    assert first.holds
    assert first.state.holders == (Holder("run_a", at(300)),)
    assert acquire(backend, "run_b").outcome is AcquireOutcome.ACQUIRED
    full = acquire(backend, "run_c")
    assert full.outcome is AcquireOutcome.FULL
    assert not full.holds
    assert {h.run_id for h in full.state.holders} == {"run_a", "run_b"}
    state = flow(backend).state(KEY)
    assert state.count == 2
    assert state.code_limit == 2
    assert not state.has_room


def test_a_duplicate_acquire_is_held_and_extends_the_expiry_without_counting_twice(
    backend: Backend,
):
    acquire(backend, "run_a")
    again = acquire(backend, "run_a", expiry=900)
    assert again.outcome is AcquireOutcome.HELD
    assert again.holds
    assert again.state.holders == (Holder("run_a", at(900)),)
    assert flow(backend).state(KEY).count == 1
    fill_up = acquire(backend, "run_b")
    assert fill_up.outcome is AcquireOutcome.ACQUIRED
    # A holder keeps its unit even on a full counter.
    assert acquire(backend, "run_b", expiry=1000).outcome is AcquireOutcome.HELD
    assert flow(backend).state(KEY).count == 2


def test_a_duplicate_release_changes_nothing_and_the_count_never_goes_negative(
    backend: Backend,
):
    acquire(backend, "run_a")
    acquire(backend, "run_b")
    released = flow(backend).release(KEY, "run_a")
    assert released is not None
    assert released.holders == (Holder("run_b", at(300)),)
    assert flow(backend).release(KEY, "run_a") is None
    assert flow(backend).release(KEY, "run_never") is None
    assert flow(backend).release(SlotKey("never_used"), "run_a") is None
    assert flow(backend).release(KEY, "run_b") == flow(backend).state(KEY)
    assert flow(backend).release(KEY, "run_b") is None
    assert flow(backend).state(KEY).count == 0
    assert acquire(backend, "run_c").outcome is AcquireOutcome.ACQUIRED
    assert flow(backend).state(KEY).count == 1


def test_an_unlimited_queue_never_fills(backend: Backend):
    for i in range(12):
        assert acquire(backend, f"run_{i}", limit=None).outcome is AcquireOutcome.ACQUIRED
    state = flow(backend).state(KEY)
    assert state.count == 12
    assert state.limit is None
    assert state.has_room


def test_a_limit_of_zero_admits_nobody(backend: Backend):
    assert acquire(backend, "run_a", limit=0).outcome is AcquireOutcome.FULL
    assert flow(backend).state(KEY).count == 0


def test_counters_of_concurrency_keys_are_separate(backend: Backend):
    tenant_a, tenant_b = SlotKey("emails", "tenant#a"), SlotKey("emails", "tenant-b")
    assert acquire(backend, "run_1", limit=1, key=tenant_a).outcome is AcquireOutcome.ACQUIRED
    assert acquire(backend, "run_2", limit=1, key=tenant_a).outcome is AcquireOutcome.FULL
    assert acquire(backend, "run_2", limit=1, key=tenant_b).outcome is AcquireOutcome.ACQUIRED
    assert flow(backend).state(KEY).count == 0


def test_the_state_of_a_never_used_counter_is_empty(backend: Backend):
    state = flow(backend).state(SlotKey("fresh", "k"))
    assert state.key == SlotKey("fresh", "k")
    assert (state.holders, state.waiting, state.paused) == ((), 0, False)
    assert (state.limit_override, state.code_limit) == (None, None)


# -- control ---------------------------------------------------------------------------------


def test_a_paused_queue_admits_nobody_new_but_keeps_its_holders(backend: Backend):
    acquire(backend, "run_a")
    paused = flow(backend).set_control(KEY, paused=True)
    assert paused.paused
    assert paused.count == 1
    refused = acquire(backend, "run_b")
    assert refused.outcome is AcquireOutcome.PAUSED
    assert not refused.holds
    assert acquire(backend, "run_a", expiry=600).outcome is AcquireOutcome.HELD
    assert not flow(backend).set_control(KEY, paused=False).paused
    assert acquire(backend, "run_b").outcome is AcquireOutcome.ACQUIRED


def test_pausing_an_unused_queue_creates_its_counter(backend: Backend):
    state = flow(backend).set_control(KEY, paused=True)
    assert (state.paused, state.count) == (True, 0)
    assert acquire(backend, "run_a").outcome is AcquireOutcome.PAUSED


def test_a_limit_override_raises_or_lowers_the_limit_in_force(backend: Backend):
    control = flow(backend).set_control(KEY, limit_override=3)
    assert control.limit_override == 3
    for run_id in ("run_a", "run_b", "run_c"):
        assert acquire(backend, run_id, limit=1).outcome is AcquireOutcome.ACQUIRED
    assert acquire(backend, "run_d", limit=1).outcome is AcquireOutcome.FULL
    assert flow(backend).state(KEY).limit == 3
    lowered = flow(backend).set_control(KEY, limit_override=0)
    assert lowered.limit == 0
    flow(backend).release(KEY, "run_a")
    flow(backend).release(KEY, "run_b")
    flow(backend).release(KEY, "run_c")
    assert acquire(backend, "run_d", limit=5).outcome is AcquireOutcome.FULL
    cleared = flow(backend).set_control(KEY, limit_override=7, clear_override=True)
    assert cleared.limit_override is None
    assert acquire(backend, "run_d", limit=1).outcome is AcquireOutcome.ACQUIRED
    assert acquire(backend, "run_e", limit=1).outcome is AcquireOutcome.FULL


def test_an_override_limits_an_otherwise_unlimited_queue(backend: Backend):
    flow(backend).set_control(KEY, limit_override=1)
    assert acquire(backend, "run_a", limit=None).outcome is AcquireOutcome.ACQUIRED
    assert acquire(backend, "run_b", limit=None).outcome is AcquireOutcome.FULL


def test_a_negative_override_is_refused(backend: Backend):
    with pytest.raises(ValueError, match="limit_override"):
        flow(backend).set_control(KEY, limit_override=-1)


def test_a_negative_override_is_a_configuration_error_that_changes_nothing(backend: Backend):
    with pytest.raises(ConfigurationError, match="limit_override must be >= 0, got -1"):
        flow(backend).set_control(KEY, limit_override=-1, paused=True)
    assert flow(backend).state(KEY).paused is False


# -- reaping ---------------------------------------------------------------------------------


def test_reap_removes_only_an_unchanged_expired_holder(backend: Backend):
    acquire(backend, "run_a", expiry=50)
    acquire(backend, "run_b", expiry=500)
    state = flow(backend).state(KEY)
    (expired,) = state.expired(at(60))
    assert expired == Holder("run_a", at(50))
    # The holder extended its lease after the reaper read it: the reap must miss.
    assert acquire(backend, "run_a", expiry=700).outcome is AcquireOutcome.HELD
    assert not flow(backend).reap(KEY, expired)
    assert flow(backend).state(KEY).count == 2
    current = Holder("run_a", at(700))
    assert flow(backend).reap(KEY, current)
    assert not flow(backend).reap(KEY, current)
    after = flow(backend).state(KEY)
    assert after.holders == (Holder("run_b", at(500)),)
    assert acquire(backend, "run_c").outcome is AcquireOutcome.ACQUIRED


# -- parking ---------------------------------------------------------------------------------


def test_parking_on_a_counter_with_room_is_refused_and_writes_nothing(backend: Backend):
    acquire(backend, "holder_1")
    run = running(backend)
    with pytest.raises(SlotAvailableError):
        park(backend, run)
    stored = backend.store.get_run(run.run_id)
    assert stored == run  # still RUNNING, same lease, same epoch
    state = flow(backend).state(KEY)
    assert state.waiting == 0
    assert flow(backend).keys_with_waiters() == []
    assert flow(backend).grant_next(KEY, at(400), at(20)) is None
    # The lease still holds: the run acquires and goes on.
    assert acquire(backend, run.run_id).outcome is AcquireOutcome.ACQUIRED


def test_parking_on_an_unused_unlimited_counter_is_refused(backend: Backend):
    run = running(backend)
    with pytest.raises(SlotAvailableError):
        park(backend, run, limit=None)
    assert backend.store.get_run(run.run_id) == run


def test_parking_sets_the_run_waiting_for_a_slot_and_bumps_its_epoch(backend: Backend):
    fill(backend)
    run = running(backend)
    parked = park(backend, run, limit=2)
    assert parked.status is RunStatus.WAITING_FOR_SLOT
    assert parked.epoch == run.epoch + 1
    assert parked.lease_owner is None
    assert backend.store.get_run(run.run_id) == parked
    state = flow(backend).state(KEY)
    assert state.waiting == 1
    assert state.count == 2
    assert flow(backend).keys_with_waiters() == [KEY]


def test_parking_on_a_paused_queue_is_allowed_even_with_room(backend: Backend):
    flow(backend).set_control(KEY, paused=True)
    parked = park(backend, running(backend))
    assert parked.status is RunStatus.WAITING_FOR_SLOT
    assert flow(backend).grant_next(KEY, at(400), at(20)) is None
    flow(backend).set_control(KEY, paused=False)
    message = flow(backend).grant_next(KEY, at(400), at(20))
    assert message is not None
    assert message.run_id == parked.run_id


def test_a_parked_run_is_refused_after_a_lost_lease(backend: Backend):
    fill(backend)
    run = running(backend)
    backend.store.take_lease(run.run_id, 0, "owner-b", at(900), at(400))  # ours expired
    with pytest.raises(LeaseLostError):
        park(backend, run)
    assert flow(backend).state(KEY).waiting == 0


# -- granting --------------------------------------------------------------------------------


def test_grant_next_hands_units_by_priority_then_in_arrival_order(backend: Backend):
    holders = fill(backend)
    low_old = park(backend, running(backend, priority=0), priority=0, enqueued=1)
    high_new = park(backend, running(backend, priority=5), priority=5, enqueued=3)
    high_old = park(backend, running(backend, priority=5), priority=5, enqueued=2)
    assert flow(backend).state(KEY).waiting == 3
    assert flow(backend).grant_next(KEY, at(400), at(20)) is None  # still full

    granted = []
    for holder in holders:
        flow(backend).release(KEY, holder)
        message = flow(backend).grant_next(KEY, at(400), at(20))
        assert message is not None
        granted.append(message)
    flow(backend).release(KEY, high_old.run_id)
    last = flow(backend).grant_next(KEY, at(400), at(20))
    assert last is not None
    granted.append(last)

    assert [m.run_id for m in granted] == [high_old.run_id, high_new.run_id, low_old.run_id]
    for message, parked in zip(granted, (high_old, high_new, low_old), strict=True):
        assert message.epoch == parked.epoch
    assert flow(backend).grant_next(KEY, at(400), at(20)) is None
    state = flow(backend).state(KEY)
    assert state.waiting == 0
    assert {h.run_id for h in state.holders} == {high_new.run_id, low_old.run_id}
    assert flow(backend).keys_with_waiters() == []


def test_a_granted_run_is_queued_holds_its_unit_and_is_taken_by_its_message(backend: Backend):
    holders = fill(backend)
    parked = park(backend, running(backend))
    flow(backend).release(KEY, holders[0])
    message = flow(backend).grant_next(KEY, at(400), at(20))
    assert message is not None
    assert (message.run_id, message.epoch) == (parked.run_id, parked.epoch)
    run = backend.store.get_run(parked.run_id)
    assert run is not None
    assert run.status is RunStatus.QUEUED
    assert run.wake_at is None
    assert run.epoch == parked.epoch
    queued = backend.store.list_runs(RunQuery(status=RunStatus.QUEUED))
    assert parked.run_id in {r.run_id for r in queued}
    assert backend.store.list_runs(RunQuery(status=RunStatus.WAITING_FOR_SLOT)) == []
    state = flow(backend).state(KEY)
    assert Holder(parked.run_id, at(400)) in state.holders
    assert state.count == 2
    taken = backend.store.take_lease(parked.run_id, message.epoch, "owner-b", at(900), at(30))
    assert taken.outcome is LeaseOutcome.TAKEN
    # The granted unit is its own: acquiring it again is HELD, not a second unit.
    again = flow(backend).acquire(KEY, parked.run_id, at(900), 2)
    assert again.outcome is AcquireOutcome.HELD
    assert flow(backend).state(KEY).count == 2


def test_a_newcomer_cannot_jump_the_parked_runs(backend: Backend):
    holders = fill(backend)
    parked = park(backend, running(backend))
    flow(backend).release(KEY, holders[0])  # room, but a run is parked ahead
    newcomer = acquire(backend, "run_newcomer")
    assert newcomer.outcome is AcquireOutcome.FULL
    assert newcomer.state.waiting == 1
    message = flow(backend).grant_next(KEY, at(400), at(20))
    assert message is not None
    assert message.run_id == parked.run_id
    assert acquire(backend, "run_newcomer").outcome is AcquireOutcome.FULL  # full again
    flow(backend).release(KEY, holders[1])
    assert acquire(backend, "run_newcomer").outcome is AcquireOutcome.ACQUIRED


def test_parking_behind_other_parked_runs_is_allowed_even_with_room(backend: Backend):
    holders = fill(backend)
    first = park(backend, running(backend))
    flow(backend).release(KEY, holders[0])
    second = park(backend, running(backend), enqueued=5)
    assert second.status is RunStatus.WAITING_FOR_SLOT
    assert flow(backend).state(KEY).waiting == 2
    message = flow(backend).grant_next(KEY, at(400), at(20))
    assert message is not None
    assert message.run_id == first.run_id


def test_grant_next_skips_a_waiter_whose_run_is_no_longer_parked(backend: Backend):
    holders = fill(backend)
    gone = park(backend, running(backend), enqueued=1)
    waiting = park(backend, running(backend), enqueued=2)
    failed = backend.store.fail_run(
        gone.run_id,
        ErrorInfo("X", "canceled"),
        TimelineEvent(at(30), EventKind.FAILED),
        epoch=gone.epoch,
    )
    assert failed is not None
    flow(backend).release(KEY, holders[0])
    message = flow(backend).grant_next(KEY, at(400), at(40))
    assert message is not None
    assert message.run_id == waiting.run_id
    state = flow(backend).state(KEY)
    assert state.waiting == 0
    assert gone.run_id not in {h.run_id for h in state.holders}
    assert state.count == 2
    assert flow(backend).keys_with_waiters() == []
    stored = backend.store.get_run(gone.run_id)
    assert stored is not None
    assert stored.status is RunStatus.FAILED


def test_a_slow_grant_never_drops_the_waiter_of_the_runs_next_park(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
):
    """A grant that read a waiter, then lost it to another grant, leaves the run's new park alone.

    The run parks under the same order key each time, so between this grant's
    read and its write the key may already name the run's next park.
    """
    store = flow(backend)
    (holder,) = fill(backend, 1)
    parked = park(backend, running(backend), limit=1)
    store.release(KEY, holder)  # room, and nobody hands it on yet
    read_head = store._head  # the read half of a grant: interleave after it
    interleaved = []

    def slow_head(key: SlotKey):
        head = read_head(key)
        if not interleaved:
            interleaved.append(True)
            # Meanwhile: another process grants the run, the run executes, gives
            # its unit back at a wait, resumes and parks again behind a newcomer.
            granted = store.grant_next(KEY, at(400), at(20))
            assert granted is not None
            assert granted.run_id == parked.run_id
            taken = backend.store.take_lease(parked.run_id, granted.epoch, OWNER, at(300), at(21))
            assert taken.outcome is LeaseOutcome.TAKEN
            waited = backend.store.checkpoint(
                parked.run_id,
                Fence(OWNER, granted.epoch),
                Checkpoint(status=RunStatus.SUSPENDED, new_epoch=True, release=KEY),
            )
            assert acquire(backend, "run_newcomer", limit=1).outcome is AcquireOutcome.ACQUIRED
            taken = backend.store.take_lease(parked.run_id, waited.epoch, OWNER, at(300), at(22))
            assert taken.outcome is LeaseOutcome.TAKEN
            assert taken.run is not None
            interleaved.append(park(backend, taken.run, limit=1))
        return head

    monkeypatch.setattr(store, "_head", slow_head)
    assert store.grant_next(KEY, at(400), at(30)) is None  # its waiter is gone, the queue full
    reparked = interleaved[-1]
    assert reparked.status is RunStatus.WAITING_FOR_SLOT
    assert store.state(KEY).waiting == 1  # the new park is still counted...
    store.release(KEY, "run_newcomer")
    message = store.grant_next(KEY, at(400), at(40))
    assert message is not None  # ...and still there to be handed the next unit
    assert (message.run_id, message.epoch) == (parked.run_id, reparked.epoch)


def test_keys_with_waiters_lists_each_counter_with_parked_runs_once(backend: Backend):
    tenant = SlotKey("emails", "tenant#7")
    other = SlotKey("reports")
    fill(backend, 1, key=tenant)
    fill(backend, 1, key=other)
    park(backend, running(backend), limit=1, key=tenant)
    park(backend, running(backend), limit=1, key=tenant, enqueued=1)
    park(backend, running(backend), limit=1, key=other)
    assert flow(backend).keys_with_waiters() == [tenant, other]
    assert flow(backend).keys_with_waiters(limit=1) == [tenant]


# -- started_at ------------------------------------------------------------------------------


def test_a_checkpoint_records_the_first_start_only(backend: Backend):
    run = running(backend)
    first = backend.store.checkpoint(
        run.run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.RUNNING, started_at=at(11))
    )
    assert first.started_at == at(11)
    second = backend.store.checkpoint(
        run.run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.RUNNING, started_at=at(99))
    )
    assert second.started_at == at(11)
    assert backend.store.get_run(run.run_id) == second


# -- rate limits -----------------------------------------------------------------------------


def test_admit_allows_limit_starts_per_period_and_says_when_the_next_may_start(
    backend: Backend,
):
    rates = flow(backend)
    assert [rates.admit("sms", 3, 10.0, at(t)) for t in (0, 1, 2)] == [0.0, 0.0, 0.0]
    assert rates.admit("sms", 3, 10.0, at(3)) == pytest.approx(7.0)
    assert rates.admit("sms", 3, 10.0, at(9.5)) == pytest.approx(0.5)
    assert rates.admit("other", 3, 10.0, at(9.5)) == 0.0  # windows are per key
    assert rates.admit("sms", 3, 10.0, at(10)) == 0.0
    assert rates.admit("sms", 3, 10.0, at(10.5)) == pytest.approx(0.5)


def test_no_period_long_window_holds_more_than_limit_admissions(backend: Backend):
    limit, period = 4, 5.0
    admitted: list[float] = []
    for step in range(60):
        t = step * 0.35
        if flow(backend).admit("burst", limit, period, at(t)) == 0.0:
            admitted.append(t)
    assert len(admitted) >= 3 * limit
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + period) <= limit


def test_a_refused_start_retries_exactly_when_admitted(backend: Backend):
    wait = flow(backend).admit("k", 1, 2.5, at(0))
    assert wait == 0.0
    wait = flow(backend).admit("k", 1, 2.5, at(1))
    assert wait == pytest.approx(1.5)
    assert flow(backend).admit("k", 1, 2.5, at(1) + dt.timedelta(seconds=wait)) == 0.0


# -- cron cursors ----------------------------------------------------------------------------


def test_the_cron_cursor_moves_only_from_the_value_the_mover_read(backend: Backend):
    cron = flow(backend)
    assert cron.last_fired("nightly") is None
    assert cron.mark_fired("nightly", None, at(60))
    assert not cron.mark_fired("nightly", None, at(120))  # another scheduler fired first
    assert cron.last_fired("nightly") == at(60)
    assert not cron.mark_fired("nightly", at(0), at(120))
    assert cron.mark_fired("nightly", at(60), at(120))
    assert cron.last_fired("nightly") == at(120)
    assert cron.last_fired("hourly") is None


# -- request budgets (DynamoDB on moto) ------------------------------------------------------


def budget(backend: Backend) -> dict[str, int]:
    assert backend.counter is not None
    snapshot = backend.counter.snapshot()
    backend.counter.reset()
    return snapshot


@pytest.mark.moto
def test_acquire_release_and_reap_are_one_request_each(aws: Backend):
    assert aws.counter is not None
    aws.counter.reset()
    assert acquire(aws, "run_a", limit=1, expiry=50).outcome is AcquireOutcome.ACQUIRED
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    assert acquire(aws, "run_b", limit=1).outcome is AcquireOutcome.FULL
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    assert acquire(aws, "run_a", limit=1, expiry=60).outcome is AcquireOutcome.HELD
    assert budget(aws) == {"dynamodb.UpdateItem": 2}  # the refusal, then the extension
    assert flow(aws).reap(KEY, Holder("run_a", at(60)))
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    acquire(aws, "run_a", limit=1)
    budget(aws)
    assert flow(aws).release(KEY, "run_a") is not None
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    assert flow(aws).release(KEY, "run_a") is None
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    flow(aws).set_control(KEY, paused=True)
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    assert acquire(aws, "run_b", limit=1).outcome is AcquireOutcome.PAUSED
    assert budget(aws) == {"dynamodb.UpdateItem": 1}
    flow(aws).state(KEY)
    assert budget(aws) == {"dynamodb.GetItem": 1}


@pytest.mark.moto
def test_parking_adds_no_request_to_the_checkpoint_and_a_grant_is_a_query_and_a_transaction(
    aws: Backend,
):
    holders = fill(aws)
    run = running(aws)
    budget(aws)
    park(aws, run)
    assert budget(aws) == {"dynamodb.TransactWriteItems": 1}
    flow(aws).grant_next(KEY, at(400), at(20))  # full: no transaction is attempted
    assert budget(aws) == {"dynamodb.Query": 1}
    assert flow(aws).keys_with_waiters() == [KEY]
    assert budget(aws) == {"dynamodb.Query": 1}
    flow(aws).release(KEY, holders[0])
    budget(aws)
    assert flow(aws).grant_next(KEY, at(400), at(20)) is not None
    assert budget(aws) == {"dynamodb.Query": 1, "dynamodb.TransactWriteItems": 1}
    refused = running(aws)
    flow(aws).release(KEY, holders[1])
    budget(aws)
    with pytest.raises(SlotAvailableError):
        park(aws, refused)
    assert budget(aws) == {"dynamodb.TransactWriteItems": 1}
    # Refused, the run goes on under the same lease: its next checkpoint needs no read.
    assert acquire(aws, refused.run_id).outcome is AcquireOutcome.ACQUIRED
    budget(aws)
    done = aws.store.checkpoint(
        refused.run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.COMPLETED, output="1")
    )
    assert done.status is RunStatus.COMPLETED
    assert budget(aws) == {"dynamodb.TransactWriteItems": 1}


@pytest.mark.moto
def test_a_rate_admission_is_a_read_and_a_write_and_a_refusal_only_a_read(aws: Backend):
    budget(aws)
    assert flow(aws).admit("sms", 1, 10.0, at(0)) == 0.0
    assert budget(aws) == {"dynamodb.GetItem": 1, "dynamodb.PutItem": 1}
    assert flow(aws).admit("sms", 1, 10.0, at(1)) > 0
    assert budget(aws) == {"dynamodb.GetItem": 1}
    assert flow(aws).mark_fired("nightly", None, at(0))
    assert budget(aws) == {"dynamodb.PutItem": 1}


@pytest.mark.moto
def test_the_counter_item_keeps_count_equal_to_its_holders_and_indexes_waiters(aws: Backend):
    client = aws.store.client  # type: ignore[attr-defined]
    table = aws.settings.table_name
    holders = fill(aws)
    park(aws, running(aws))

    def counter() -> dict:
        return client.get_item(
            TableName=table, Key={"pk": {"S": "QUEUE#emails"}, "sk": {"S": "COUNTER"}}
        )["Item"]

    item = counter()
    assert item["count"] == {"N": "2"}
    assert {name for name in item if name.startswith("holder#")} == {f"holder#{h}" for h in holders}
    assert (item["waiting"], item["gsi2pk"], item["gsi2sk"]) == (
        {"N": "1"},
        {"S": "QUEUES#WAITING"},
        {"S": "emails"},
    )
    flow(aws).release(KEY, holders[0])
    assert flow(aws).grant_next(KEY, at(400), at(20)) is not None
    item = counter()
    assert item["count"] == {"N": "2"}
    assert item["waiting"] == {"N": "0"}
    assert "gsi2pk" not in item
    assert "gsi2sk" not in item


@pytest.mark.moto
def test_a_park_too_large_for_one_transaction_parks_with_its_status_update(aws: Backend):
    from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry  # noqa: PLC0415

    fill(aws)
    run = running(aws)
    # 98 entries + META update fill the first 99 actions: the park must not be split off.
    entries = tuple(
        JournalEntry(seq, "step", seq, EntryKind.STEP, EntryStatus.COMPLETED, result="1")
        for seq in range(98)
    )
    budget(aws)
    parked = aws.store.checkpoint(
        run.run_id,
        Fence(OWNER, 0),
        Checkpoint(
            status=RunStatus.WAITING_FOR_SLOT,
            new_epoch=True,
            entries=entries,
            park=Park(KEY, 0, at(0), 2),
        ),
    )
    assert budget(aws) == {"dynamodb.TransactWriteItems": 2}
    assert parked.status is RunStatus.WAITING_FOR_SLOT
    assert aws.store.load_journal(run.run_id) == list(entries)
    assert flow(aws).state(KEY).waiting == 1


# -- release folded into the checkpoint ----------------------------------------------------


def _finish(backend: Backend, run: RunRecord) -> RunRecord:
    return backend.store.checkpoint(
        run.run_id,
        Fence(OWNER, run.epoch),
        Checkpoint(status=RunStatus.COMPLETED, output='"done"', release=KEY),
    )


def test_a_final_checkpoint_gives_back_the_unit_in_the_same_write(backend: Backend):
    run = running(backend)
    assert acquire(backend, run.run_id).outcome is AcquireOutcome.ACQUIRED
    finished = _finish(backend, run)
    assert finished.status is RunStatus.COMPLETED
    assert flow(backend).state(KEY).count == 0


def test_a_release_is_not_folded_while_runs_are_parked_and_nothing_is_written(backend: Backend):
    run = running(backend)
    acquire(backend, run.run_id, limit=1)
    parked = park(backend, running(backend), limit=1)
    with pytest.raises(ReleaseNotFoldedError):
        _finish(backend, run)
    assert backend.store.get_run(run.run_id) == run  # still RUNNING and held
    assert flow(backend).state(KEY).holds(run.run_id)
    assert flow(backend).state(KEY).waiting == 1
    assert parked.status is RunStatus.WAITING_FOR_SLOT


def test_a_release_of_a_unit_not_held_is_not_folded(backend: Backend):
    run = running(backend)
    with pytest.raises(ReleaseNotFoldedError):
        _finish(backend, run)
    assert backend.store.get_run(run.run_id) == run
    assert flow(backend).state(KEY).count == 0


def test_a_park_records_that_the_run_passed_its_rate_limit(backend: Backend):
    run = running(backend)
    parked = backend.store.checkpoint(
        run.run_id,
        Fence(OWNER, run.epoch),
        Checkpoint(
            status=RunStatus.WAITING_FOR_SLOT,
            new_epoch=True,
            park=Park(KEY, 0, at(0), 0),
            admitted_at=at(12),
        ),
    )
    assert parked.admitted_at == at(12)
    assert backend.store.get_run(run.run_id) == parked
