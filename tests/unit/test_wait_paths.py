"""Waits up to SQS's 900 s delay ride a delayed message; longer ones go to the timer index."""

from __future__ import annotations

import datetime as dt

import pytest

from durable_lambda import ConfigurationError, task, wait
from durable_lambda.testing import LocalRunner

FAR = dt.timedelta(days=365)


@pytest.mark.parametrize(
    ("seconds", "via_timer"),
    [(899, False), (900, False), (901, True), (2 * 3600, True)],
)
def test_wait_takes_the_right_path(registry, seconds, via_timer):
    runner = LocalRunner(registry=registry)

    @task(id="w", registry=registry)
    async def waiter(payload: int) -> str:
        await wait.for_(seconds=payload)
        return "woke"

    handle = runner.trigger(waiter, seconds)
    runner.step_once()  # first invocation: runs to the wait and suspends
    run = runner.client.get_run(handle.run_id)
    assert run.status.value == "SUSPENDED"
    timers = runner.store.due_timers(runner.clock.now() + FAR)
    if via_timer:
        assert len(runner.queue) == 0
        assert [t.run_id for t in timers] == [handle.run_id]
        assert timers[0].wake_at == run.wake_at
    else:
        assert timers == []
        due = runner.queue.next_due()
        assert due is not None
        assert abs((due - run.wake_at).total_seconds()) < 1.01  # DelaySeconds rounds up
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.output == "woke"
    assert runner.invocations[handle.run_id] == 2


def test_two_hour_wait_is_fired_by_the_scheduler_once_due(registry):
    runner = LocalRunner(registry=registry)

    @task(id="w", registry=registry)
    async def waiter(payload: None) -> str:
        await wait.for_(hours=2)
        return "woke"

    handle = runner.trigger(waiter, None)
    runner.step_once()
    assert runner.scheduler.tick().timers_fired == 0  # not due within the SQS horizon yet
    runner.clock.advance(2 * 3600 - 600)  # 10 minutes before the wake time
    assert runner.scheduler.tick().timers_fired == 1  # handed to SQS with the exact delay
    assert runner.scheduler.tick().timers_fired == 0  # a second tick fires nothing again
    run = runner.client.get_run(handle.run_id)
    due = runner.queue.next_due()
    assert due is not None
    assert abs((due - run.wake_at).total_seconds()) < 1.01
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "COMPLETED"


def test_an_early_message_is_resent_for_the_wake_time(registry):
    runner = LocalRunner(registry=registry)

    @task(id="w", registry=registry)
    async def waiter(payload: None) -> str:
        await wait.for_(seconds=300)
        return "woke"

    handle = runner.trigger(waiter, None)
    runner.step_once()
    run = runner.client.get_run(handle.run_id)
    report = runner.invoke_once(handle.run_id, run.epoch)  # delivered 300 s early
    assert report.action == "early"
    assert runner.invocations[handle.run_id] == 1
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "COMPLETED"


def test_duplicate_and_stale_messages_execute_nothing(registry):
    runner = LocalRunner(registry=registry)
    calls: list[int] = []

    @task(id="w", registry=registry)
    async def waiter(payload: None) -> int:
        calls.append(1)
        await wait.for_(seconds=60)
        return len(calls)

    handle = runner.trigger(waiter, None)
    runner.step_once()
    assert runner.invoke_once(handle.run_id, 0).action == "stale"  # epoch 0 was used up
    runner.drain()
    assert runner.invoke_once(handle.run_id, 1).action == "stale"  # the run has finished
    assert runner.client.get_run(handle.run_id).status.value == "COMPLETED"


def test_a_run_not_started_within_its_ttl_expires(registry):
    runner = LocalRunner(registry=registry)
    calls: list[int] = []

    @task(id="w", registry=registry)
    async def late(payload: None) -> None:
        calls.append(1)

    handle = runner.trigger(late, None, delay=60, ttl=30)
    runner.drain()
    run = runner.client.get_run(handle.run_id)
    assert run.status.value == "EXPIRED"
    assert calls == []
    on_time = runner.trigger(late, None, delay=10, ttl=30)
    runner.drain()
    assert runner.client.get_run(on_time.run_id).status.value == "COMPLETED"


def test_a_lost_resume_message_is_sent_again_by_the_scheduler(registry):
    runner = LocalRunner(registry=registry)

    @task(id="w", registry=registry)
    async def waiter(payload: None) -> str:
        await wait.for_(seconds=30)
        return "woke"

    handle = runner.trigger(waiter, None)
    runner.step_once()  # suspends for 30 s and sends its resume message...
    assert runner.queue.receive(runner.clock.now() + dt.timedelta(seconds=60))  # ...which is lost
    runner.clock.advance(60)
    assert runner.scheduler.tick().lost_messages_resent == 0  # not overdue long enough yet
    runner.clock.advance(120)
    assert runner.scheduler.tick().lost_messages_resent == 1
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "COMPLETED"


@pytest.mark.parametrize(
    ("duration", "shown"),
    [({"seconds": -5}, "-5 seconds"), ({"minutes": 1, "seconds": -90}, "-30 seconds")],
)
def test_a_negative_wait_is_rejected_when_called_in_seconds(duration, shown):
    # Rejected at the call itself, before anything awaits it (and outside a task).
    with pytest.raises(ConfigurationError, match=shown) as caught:
        wait.for_(**duration)
    assert "day" not in str(caught.value)


def test_an_unrepresentable_wait_is_rejected_when_called():
    with pytest.raises(ConfigurationError, match="finite duration"):
        wait.for_(days=float("inf"))


def test_waiting_until_a_naive_datetime_is_rejected_when_called():
    with pytest.raises(ConfigurationError, match="timezone"):
        wait.until(dt.datetime(2030, 1, 1, 12, 0))  # noqa: DTZ001 - the point of the test


def test_waiting_until_an_aware_datetime_in_another_zone_resumes_at_that_instant(registry):
    runner = LocalRunner(registry=registry)
    paris = dt.timezone(dt.timedelta(hours=2))
    wake = (runner.clock.now() + dt.timedelta(hours=3)).astimezone(paris)

    @task(id="w", registry=registry)
    async def waiter(payload: int) -> str:
        await wait.until(wake)
        return "woke"

    handle = runner.trigger(waiter, 0)
    runner.step_once()
    assert runner.client.get_run(handle.run_id).wake_at == wake
    runner.drain()
    assert runner.client.result(handle.run_id).output == "woke"


def test_an_overdue_run_behind_a_backlog_is_resent_with_backoff_not_every_tick(registry):
    # A run overdue because its message waits behind a backlog (not lost) must not
    # get a duplicate every tick: duplicates lengthen the backlog that delays it.
    runner = LocalRunner(registry=registry)

    @task(id="w-backlog", registry=registry)
    async def waiter(payload: None) -> str:
        await wait.for_(seconds=30)
        return "woke"

    runner.trigger(waiter, None)
    runner.step_once()  # suspended for 30 s; its message stays queued (the backlog)
    runner.clock.advance(30 + 121)  # overdue by more than stranded_after (120 s)
    resent = []
    for _ in range(16):  # 16 ticks, a minute apart: 16 minutes of backlog
        resent.append(runner.scheduler.tick().lost_messages_resent)
        runner.clock.advance(60)
    # Sent again at once, then after 2, 4 and 8 more minutes: four, not sixteen.
    assert sum(resent) == 4
    assert [i for i, n in enumerate(resent) if n] == [0, 2, 6, 14]
