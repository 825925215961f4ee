"""Two workers whose clocks disagree: a lease stays exclusive within the grace, fencing beyond it.

A lease ends at the holder's deadline plus ``LEASE_GRACE`` (5 s) by the
holder's clock, and a taker compares it with its own clock. Within the grace
no skew lets a second worker take a live holder's run. Beyond it a second
worker may take the run while the first still runs a step; the first one's
writes are fenced off (owner + epoch on every record), so the step is
recorded once, by whoever holds the lease, and the first worker abandons.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from contract_backends import T0, Backend

from durable_lambda import Queue, TaskContext, task
from durable_lambda.adapters.memory import MemoryBlobStore, MemoryResumeQueue
from durable_lambda.engine.lease import LEASE_GRACE
from durable_lambda.engine.records import ResumeMessage
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.ports import Ports
from durable_lambda.services import Services, build_services
from durable_lambda.task import TaskRegistry
from durable_lambda.worker import Invocation, Report

#: Seconds each invocation has left when it takes the run.
REMAINING = 100.0


class ManualClock:
    """A clock that moves only when told: the interleavings below need exact instants."""

    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - T0).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def worker_with(backend: Backend, registry: TaskRegistry, clock: ManualClock) -> Services:
    assert backend.flow is not None
    ports = Ports(
        store=backend.store,
        flow=backend.flow,
        queue=MemoryResumeQueue(clock.now),
        blobs=MemoryBlobStore(),  # values go through the store's own value store
        clock=clock,
    )
    return build_services(ports, registry, backend.settings)


def invoke(services: Services, message: ResumeMessage, name: str) -> Report:
    invocation = Invocation(request_id=name, remaining=lambda: REMAINING, timeout=120.0)
    return services.worker.handle(message, invocation)


def skewed_pair(
    backend: Backend, registry: TaskRegistry, skew_s: float, late_s: float
) -> tuple[str, list[str], dict[str, Report]]:
    """A takes the run at ``T0``; B is invoked ``late_s`` later, its clock ``skew_s`` ahead.

    B runs in another thread, started from inside A's step body, and the two
    are ordered by events, not by timing: if B takes the run, its step body
    holds until A has tried to record the step, so A's record meets B's lease.
    """
    clock_a = ManualClock(T0)
    clock_b = ManualClock(T0 + dt.timedelta(seconds=late_s + skew_s))
    a, b = worker_with(backend, registry, clock_a), worker_with(backend, registry, clock_b)
    bodies: list[str] = []
    reports: dict[str, Report] = {}
    b_in_body, a_done = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def charge() -> str:
        who = "a" if not bodies else "b"
        bodies.append(who)
        if who == "a":  # A is mid-step: a duplicate message reaches B now
            thread = threading.Thread(
                target=lambda: reports.__setitem__("b", invoke(b, message, "req-b"))
            )
            threads.append(thread)
            thread.start()
            while thread.is_alive() and not b_in_body.wait(0.01):
                pass  # until B is inside the body too, or B gave up on the run
        else:
            b_in_body.set()
            a_done.wait()
        return f"charged by {who}"

    @task(id="skewed", registry=registry, queue=Queue("skew", concurrency_limit=1))
    async def skewed(payload: int, ctx: TaskContext) -> str:
        return await ctx.step("charge", charge)

    handle = a.client.trigger(skewed, 1)
    message = ResumeMessage(handle.run_id, 0)
    reports["a"] = invoke(a, message, "req-a")
    a_done.set()
    threads[0].join()
    return handle.run_id, bodies, reports


@pytest.mark.parametrize("skew_s", [0.0, 4.0, 4.999])
def test_a_clock_ahead_by_less_than_the_grace_cannot_take_a_live_holders_run(
    backend: Backend, registry: TaskRegistry, skew_s: float
):
    assert skew_s < LEASE_GRACE.total_seconds()
    # B is invoked at A's very deadline: the latest instant A may still write.
    run_id, bodies, reports = skewed_pair(backend, registry, skew_s, late_s=REMAINING)
    assert reports["b"].action == "busy"
    assert reports["a"].action == "executed"
    assert bodies == ["a"]
    assert [e.key for e in backend.store.load_journal(run_id)] == ["charge#0"]
    run = backend.store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED


@pytest.mark.parametrize("skew_s", [5.001, 120.0, 3600.0])
def test_beyond_the_grace_the_step_is_recorded_once_and_the_first_worker_abandons(
    backend: Backend, registry: TaskRegistry, skew_s: float
):
    run_id, bodies, reports = skewed_pair(backend, registry, skew_s, late_s=REMAINING)
    # B took a run whose holder still lived: the body ran twice (documented) ...
    assert reports["b"].action == "executed"
    assert bodies == ["a", "b"]
    # ... but A's record, tried while B held the lease, was fenced off: B's is the one.
    assert reports["a"].action == "abandoned"
    journal = backend.store.load_journal(run_id)
    assert [(e.key, e.result) for e in journal] == [("charge#0", '"charged by b"')]
    run = backend.store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == '"charged by b"'
    # A abandoned without giving back a unit it no longer owned; B gave it back.
    assert backend.flow is not None
    assert backend.flow.state(SlotKey("skew")).count == 0
