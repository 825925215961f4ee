"""Queues on the in-process runner: parking, hand-off order, keys, control, rate limits, cron."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from durable_lambda import ConfigurationError, Queue, RateLimit, task
from durable_lambda.cron import ScheduledPayload
from durable_lambda.engine.slots import SlotKey
from durable_lambda.scheduler import Scheduler
from durable_lambda.testing import LocalRunner

FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _started(runner: LocalRunner, handle_ids: list[str]) -> list[str]:
    """Run ids in the order their task body first ran."""
    runs = [runner.client.get_run(run_id) for run_id in handle_ids]
    started = [r for r in runs if r.started_at is not None]
    return [r.run_id for r in sorted(started, key=lambda r: r.started_at or FAR)]


def test_parked_runs_start_in_priority_order_fifo_within_a_priority(registry, runner, one_slot):
    key = SlotKey("single")
    runner.flow.acquire(key, "someone-else", FAR, 1)
    handles = {}
    for label, priority in [("a", 0), ("b", 5), ("c", 5), ("d", 0), ("e", 9)]:
        handles[label] = runner.trigger(one_slot, label, priority=priority).run_id
        runner.clock.advance(0.01)
    runner.drain()
    assert all(
        runner.client.get_run(h).status.value == "WAITING_FOR_SLOT" for h in handles.values()
    )
    assert runner.flow.waiters(key) == [handles[x] for x in "ebcad"]
    runner.admission.leave(key, "someone-else")
    runner.drain()
    order = _started(runner, list(handles.values()))
    assert order == [handles[x] for x in "ebcad"]
    assert runner.flow.state(key).count == 0


def test_parked_runs_cost_no_invocations_while_parked(registry, runner, one_slot):
    key = SlotKey("single")
    runner.flow.acquire(key, "someone-else", FAR, 1)
    ids = [runner.trigger(one_slot, f"r{i}").run_id for i in range(5)]
    runner.drain()
    assert sum(runner.invocations.values()) == 0  # parking executes no step
    parked = [r for r in runner.reports if r.action == "parked"]
    assert len(parked) == 5
    runner.clock.advance(3600)  # an hour parked costs nothing
    for _ in range(3):
        runner.scheduler.tick()
    runner.drain()
    assert len([r for r in runner.reports if r.action == "parked"]) == 5
    runner.admission.leave(key, "someone-else")
    runner.drain()
    assert all(runner.client.get_run(i).status.value == "COMPLETED" for i in ids)
    assert all(runner.invocations[i] == 1 for i in ids)


def test_a_killed_holders_unit_is_reclaimed_after_its_lease_expires(registry, runner, one_slot):
    key = SlotKey("single")
    past = runner.clock.now() - dt.timedelta(seconds=1)
    runner.flow.acquire(key, "killed-run", past, 1)
    result = runner.run(one_slot, "x")
    assert result.ok
    assert runner.flow.state(key).count == 0


def test_duplicate_acquire_and_release_change_nothing(runner):
    key = SlotKey("dups")
    assert runner.flow.acquire(key, "r1", FAR, 2).outcome == "acquired"
    assert runner.flow.acquire(key, "r1", FAR, 2).outcome == "held"
    assert runner.flow.state(key).count == 1
    assert runner.flow.release(key, "r1") is not None
    assert runner.flow.release(key, "r1") is None
    assert runner.flow.state(key).count == 0


def test_each_concurrency_key_has_its_own_limit(registry, runner):
    @task(id="keyed", registry=registry, queue=Queue("tenants", concurrency_limit=2))
    async def keyed(payload: str) -> str:
        return payload

    for tenant in ("t1", "t2"):
        for i in range(2):
            assert runner.flow.acquire(SlotKey("tenants", tenant), f"{tenant}-{i}", FAR, 2).holds
    assert runner.flow.acquire(SlotKey("tenants", "t1"), "t1-x", FAR, 2).outcome == "full"
    assert runner.flow.acquire(SlotKey("tenants", "t3"), "t3-0", FAR, 2).holds


def test_raised_limit_and_resume_take_effect_at_once(registry, runner, one_slot):
    key = SlotKey("single")
    runner.flow.acquire(key, "holder", FAR, 1)
    ids = [runner.trigger(one_slot, f"r{i}").run_id for i in range(4)]
    runner.drain()
    state = runner.client.set_queue_limit("single", 3)  # 1 held + 2 handed off at once
    assert (state.count, state.waiting, state.limit) == (3, 2, 3)
    assert len(runner.queue) == 2  # the two granted runs' resume messages
    runner.drain()
    assert all(runner.client.get_run(i).status.value == "COMPLETED" for i in ids)
    runner.client.set_queue_limit("single", None)
    assert runner.client.queue_state("single").limit == 1


def test_a_paused_queue_starts_nothing_until_resumed(registry, runner, one_slot):
    runner.client.pause_queue("single")
    ids = [runner.trigger(one_slot, f"r{i}").run_id for i in range(3)]
    runner.drain()
    for _ in range(3):
        runner.scheduler.tick()
    runner.drain()
    assert _started(runner, ids) == []
    runner.client.resume_queue("single")
    runner.drain()
    assert len(_started(runner, ids)) == 3
    assert all(runner.client.get_run(i).status.value == "COMPLETED" for i in ids)


def test_pausing_an_unlimited_queue_parks_its_runs(registry, runner):
    @task(id="free", registry=registry)
    async def free(payload: int) -> int:
        return payload

    runner.client.pause_queue("free")
    runner.admission.control_ttl = 0  # no cache in this test
    handle = runner.trigger(free, 1)
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "WAITING_FOR_SLOT"
    runner.client.resume_queue("free")
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "COMPLETED"


def test_cached_queue_control_state_expires_on_the_injected_clock(registry, runner):
    @task(id="free", registry=registry)
    async def free(payload: int) -> int:
        return payload

    runner.run(free, 1)  # caches "not paused" for control_ttl seconds
    runner.client.pause_queue("free")
    runner.clock.advance(runner.admission.control_ttl + 1)
    handle = runner.trigger(free, 2)
    runner.drain()
    assert runner.client.get_run(handle.run_id).status.value == "WAITING_FOR_SLOT"


def test_rate_limit_admits_no_more_than_the_limit_in_any_window(registry, runner):
    @task(id="rated", registry=registry, queue=Queue("api", rate_limit=RateLimit(5, 10)))
    async def rated(payload: int) -> int:
        return payload

    ids = [runner.trigger(rated, i).run_id for i in range(30)]
    runner.drain()
    runs = [runner.client.get_run(i) for i in ids]
    assert all(r.status.value == "COMPLETED" for r in runs)
    starts = sorted((r.started_at or FAR).timestamp() for r in runs)
    for first in starts:
        assert sum(1 for t in starts if first <= t < first + 10) <= 5
    assert starts[-1] - starts[0] >= 50  # 30 starts at 5 per 10 s need at least 50 s
    assert any(e.kind == "rate_limited" for e in runner.timeline(ids[-1]))


def test_cron_fires_each_occurrence_once_with_two_schedulers(registry, runner):
    fired: list[str] = []

    @task(id="every-5", registry=registry, cron="*/5 * * * *")
    async def every_five(payload: ScheduledPayload) -> str:
        fired.append(payload.timestamp.isoformat())
        return payload.timestamp.isoformat()

    second = Scheduler(
        store=runner.store,
        queue=runner.queue,
        clock=runner.clock,
        admission=runner.admission,
        cron=runner.scheduler.cron,
    )
    runner.scheduler.tick()  # first sight: sets the cursor, fires nothing
    for _ in range(6):  # 30 minutes of ticks, both schedulers at the same moment
        runner.clock.advance(300)
        threads = [threading.Thread(target=s.tick) for s in (runner.scheduler, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    runner.drain()
    assert len(fired) == 6
    assert len(set(fired)) == 6


def test_invalid_cron_or_timezone_is_rejected(registry):
    with pytest.raises(ConfigurationError, match="cron expression"):

        @task(id="bad", registry=registry, cron="every minute")
        async def bad(payload: None) -> None:
            return None

    with pytest.raises(ConfigurationError, match="timezone"):

        @task(id="bad2", registry=registry, cron="* * * * *", timezone="Mars/Base")
        async def bad2(payload: None) -> None:
            return None


def test_priority_out_of_range_is_rejected(registry, runner, one_slot):
    with pytest.raises(ConfigurationError, match="priority"):
        runner.trigger(one_slot, "x", priority=10**9)
