"""Waits resume on time: short ones through SQS delays, long ones through the timer index."""

from __future__ import annotations

import datetime as dt

import pytest
from ledger import read_ledger
from ledger_checks import executions
from stack_waits import wait_all

from durable_lambda.engine.journal import EntryKind, EntryStatus
from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

FAR = dt.timedelta(days=365)


@pytest.mark.emulator
@pytest.mark.slow
def test_a_two_second_wait_resumes_after_its_wake_time_by_its_own_delayed_message(
    make_stack, ledger
):
    settings = Settings(short_wait_seconds=0.5)
    stack = make_stack(settings, timeout=5.0)
    handle = stack.trigger("ledger-wait", {"seconds": 2})
    (run,) = wait_all(stack, [handle.run_id], timeout=30)
    journal = stack.client.store.load_journal(handle.run_id)
    (waited,) = [entry for entry in journal if entry.kind is EntryKind.WAIT]
    resumed = executions(read_ledger(ledger))[handle.run_id, "stamp#1"][0]

    assert run.status is RunStatus.COMPLETED
    assert run.invocations == 2  # it suspended for the wait rather than sleeping
    assert waited.wake_at is not None
    lag = resumed.start - waited.wake_at.timestamp()
    assert lag >= 0, f"resumed {-lag:.3f} s before the wake time"
    # Resumed by the suspension's own SQS-delayed message: the scheduler's sweep
    # re-sends a run's message only once it is this overdue. (How soon after
    # the wake time is the machine's business: under load it was 2 s.)
    assert lag < settings.stranded_after_seconds, f"resumed {lag:.3f} s after the wake time"


@pytest.mark.moto
@pytest.mark.slow
def test_a_two_hour_wait_is_fired_from_the_timer_index_by_the_scheduler(in_process):
    handle = in_process.client.trigger("ledger-wait", {"seconds": 2 * 3600})
    (report,) = in_process.deliver()
    run = in_process.client.get_run(handle.run_id)
    assert (report.action, run.status) == ("executed", RunStatus.SUSPENDED)
    assert sum(in_process.queue_depth().values()) == 0  # beyond SQS's 15 minutes: no message
    (timer,) = in_process.ports.store.due_timers(in_process.clock.now() + FAR)
    assert (timer.run_id, timer.wake_at) == (handle.run_id, run.wake_at)

    assert in_process.scheduler.tick().timers_fired == 0  # not due within SQS's horizon yet
    in_process.clock.advance(2 * 3600)
    assert in_process.scheduler.tick().timers_fired == 1
    assert in_process.ports.store.due_timers(in_process.clock.now() + FAR) == []
    (report,) = in_process.deliver(wait_seconds=1)
    result = in_process.client.result(handle.run_id)

    assert report.action == "executed"
    assert result is not None
    assert result.status is RunStatus.COMPLETED
    assert result.output["after"] >= result.output["before"]
    assert in_process.client.get_run(handle.run_id).invocations == 2


@pytest.mark.moto
@pytest.mark.slow
@pytest.mark.parametrize(("seconds", "via_timer"), [(899, False), (900, False), (901, True)])
def test_waits_up_to_900_seconds_ride_an_sqs_delay_and_longer_ones_a_timer(
    in_process, seconds, via_timer
):
    handle = in_process.client.trigger("ledger-wait", {"seconds": seconds})
    (report,) = in_process.deliver()
    run = in_process.client.get_run(handle.run_id)
    timers = in_process.ports.store.due_timers(in_process.clock.now() + FAR)
    depth = in_process.queue_depth()
    (waited,) = [
        e for e in in_process.ports.store.load_journal(handle.run_id) if e.kind is EntryKind.WAIT
    ]

    assert (report.action, run.status) == ("executed", RunStatus.SUSPENDED)
    assert (waited.status, waited.wake_at) == (EntryStatus.WAITING, run.wake_at)
    if via_timer:
        assert depth == {"Messages": 0, "MessagesNotVisible": 0, "MessagesDelayed": 0}
        assert [(t.run_id, t.epoch, t.wake_at) for t in timers] == [
            (handle.run_id, run.epoch, run.wake_at)
        ]
    else:
        assert depth == {"Messages": 0, "MessagesNotVisible": 0, "MessagesDelayed": 1}
        assert timers == []
