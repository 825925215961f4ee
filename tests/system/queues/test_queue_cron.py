"""A cron task fires once per occurrence while two schedulers tick at the same moment."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from ledger import read_ledger
from queue_helpers import wait_until
from stack_waits import wait_all

from durable_lambda.adapters.aws import aws_ports
from durable_lambda.admission import Admission
from durable_lambda.client import Client
from durable_lambda.cron import occurrences
from durable_lambda.engine.records import RunQuery
from durable_lambda.scheduler import CronFirer, Scheduler, TickReport
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry
from durable_lambda.testing import SkipClock

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

#: Minutes the clock jumps before each round of ticks: some rounds fire several occurrences.
JUMPS = (1, 1, 2, 1, 3, 1)


def _scheduler(stack, clock: SkipClock) -> Scheduler:
    """A scheduler built as ``lambda_entry._build`` builds one, on the stack's moto server."""
    ports = aws_ports(stack.settings, stack.session)
    admission = Admission(
        slots=ports.flow, rates=ports.flow, store=ports.store, queue=ports.queue, clock=clock
    )
    client = Client(
        store=ports.store, queue=ports.queue, clock=clock, slots=ports.flow, admission=admission
    )
    return Scheduler(
        store=ports.store,
        queue=ports.queue,
        clock=clock,
        dead_letters=ports.dead_letters,
        admission=admission,
        cron=CronFirer(default_registry, ports.flow, client, clock),
    )


def _tick_together(schedulers: list[Scheduler]) -> list[TickReport]:
    barrier = threading.Barrier(len(schedulers))
    reports: list[TickReport] = []
    errors: list[BaseException] = []

    def tick(scheduler: Scheduler) -> None:
        barrier.wait()
        try:
            reports.append(scheduler.tick())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return reports


def test_each_occurrence_fires_once_with_two_schedulers_ticking_at_once(make_stack, ledger):
    stack = make_stack(
        Settings(short_wait_seconds=0),
        task_modules=("queue_tasks", "cron_tasks"),
        timeout=10.0,
        reserved_concurrency=3,
        visibility_timeout=10,
        # The stack's own scheduler (real time) stays out of it: the two below fire.
        scheduler_interval=3600.0,
    )
    task = default_registry.get("q-cron")
    assert task.cron is not None
    # Frozen, mid-minute: real seconds passing under load cannot add an occurrence.
    now = dt.datetime.now(dt.UTC).replace(second=30, microsecond=0)
    clock = SkipClock(now, frozen=True)
    schedulers = [_scheduler(stack, clock), _scheduler(stack, clock)]
    start = clock.now()

    first = _tick_together(schedulers)  # first sight: sets the cursor, fires nothing
    assert sum(r.cron_runs for r in first) == 0
    created = 0
    for minutes in JUMPS:
        clock.advance(60 * minutes)
        created += sum(r.cron_runs for r in _tick_together(schedulers))

    expected = [
        when.isoformat()
        for when in occurrences(task.cron, task.timezone, start, clock.now())
        if when > start
    ]
    assert len(expected) == sum(JUMPS)
    assert created == len(expected)  # a trigger that found the other's run created nothing
    runs = stack.client.list_runs(RunQuery(task_id="q-cron", limit=100))
    keys = Counter(run.idempotency_key for run in runs)
    assert keys == Counter(f"cron:q-cron:{when}" for when in expected)
    wait_all(stack, [run.run_id for run in runs], timeout=60)

    lines = wait_until(
        lambda: (found := read_ledger(ledger)) and len(found) >= 2 * len(expected) and found,
        timeout=10,
        what="the ledger lines of every fired run",
    )
    executions = Counter(line["key"] for line in lines if line["event"] == "start")
    assert executions == Counter(expected)  # each occurrence's step ran exactly once
    outputs = sorted(stack.client.result(run.run_id).output for run in runs)
    assert outputs == sorted(expected)
    assert all(dt.datetime.fromisoformat(when).second == 0 for when in expected)
