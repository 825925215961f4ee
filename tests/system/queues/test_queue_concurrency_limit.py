"""A concurrency limit holds while workers are SIGKILLed at random, and no unit leaks."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from ledger import read_ledger
from queue_helpers import flow_client, intervals, max_concurrency, wait_until
from queue_tasks import LIMITED
from stack_waits import wait_all

from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus
from durable_lambda.local import Chaos
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

RUNS = 100
#: Short, so a killed holder's unit (held until the deadline plus the 5 s lease
#: grace) comes back soon; long enough that a cold start, the final checkpoint,
#: release and hand-off rarely overrun it on a 2-core machine kept busy (at 5 s,
#: a run with 4 other test processes beside it saw 188 timeouts and did not
#: finish 100 runs in 20 minutes).
TIMEOUT = 8.0


@pytest.mark.timeout(1500)  # the 1200 s liveness bound below, plus the quiet wait and teardown
def test_limit_of_three_holds_for_100_runs_while_workers_are_killed(make_stack, ledger):
    stack = make_stack(
        # A kill between a grant and its resume message strands the granted run
        # until the scheduler's sweep re-sends it (default: 2 minutes overdue);
        # 20 s keeps the test short. Runs still QUEUED behind the trigger burst
        # may get a duplicate message from the sweep: harmless, it is dropped.
        Settings(short_wait_seconds=0, stranded_after_seconds=20),
        timeout=TIMEOUT,
        reserved_concurrency=6,  # more than the limit: the limit is what binds
        visibility_timeout=int(TIMEOUT),  # a killed batch comes back soon
        max_receive_count=20,  # a message survives a few killed invocations
        scheduler_interval=1.0,  # recovers dead holders' runs, reaps and hands units on
        batch_size=1,
        # Chaos arms a kill in a fraction of invocations at a uniform moment of
        # the timeout; most invocations here end within a second, so most
        # armed kills never land. Measured: 0.1 killed ~1.5 % of invocations
        # (3 of 209), 0.3 kills ~6 % (13 of 228), nearer the ~10 % wanted.
        chaos=Chaos(probability=0.3, seed=31_337),
    )
    client = flow_client(stack)
    with ThreadPoolExecutor(4) as pool:
        handles = list(
            pool.map(
                lambda i: stack.trigger(
                    "q-limited", {"steps": 2, "seconds": 0.1, "label": f"r{i}"}
                ),
                range(RUNS),
            )
        )
    # A bound on liveness, not a speed claim: on a 2-core machine kept busy by
    # something else, 5 s invocations time out, are killed and recovered often,
    # and 100 runs through a limit of 3 take minutes.
    runs = wait_all(stack, [h.run_id for h in handles], timeout=1200)
    lines = read_ledger(ledger)
    found = intervals(lines, killed_bound=TIMEOUT)
    peak, when = max_concurrency(found)
    killed = [i for i in found if i.killed]
    kills = stack.worker.stats.kills

    assert [run.status for run in runs] == [RunStatus.COMPLETED] * RUNS
    assert peak <= LIMITED.concurrency_limit, f"{peak} step bodies ran at once at t={when}"
    # The limit was what bound: runs found the counter full and were parked (a
    # recorded fact; how many bodies overlapped in wall-clock time depends on
    # how busy the machine was).
    parked = [
        r.run_id
        for r in runs
        if any(e.kind is EventKind.PARKED for e in stack.client.store.list_events(r.run_id))
    ]
    assert parked, "no run was ever parked: the limit never bound"
    assert kills >= 3, "the chaos seed should have killed a few workers"
    assert {i.run for i in found} == {h.run_id for h in handles}

    # Quiet: nothing parked, no unit held by a live invocation. A final
    # checkpoint gives the unit back in the same write; only when runs were
    # parked is the unit released apart (then handed on), and a kill in that
    # window leaves an expired unit that the scheduler reaps while runs are
    # parked. So ``count`` must be 0 but for such leftovers, at most one per kill.
    def quiet():
        state = client.queue_state(LIMITED.name)
        now = dt.datetime.now(dt.UTC)
        live = [h for h in state.holders if h.expiry > now]
        return state if state.waiting == 0 and not live else None

    state = wait_until(quiet, timeout=120, what="the queue to go quiet")
    leftovers = [h.run_id for h in state.holders]
    assert set(leftovers) <= {run.run_id for run in runs}, "a unit is held by an unknown run"
    assert len(leftovers) <= kills
    assert state.waiting == 0
    print(  # noqa: T201 - the figures behind the assertions (pytest -s)
        f"peak={peak} kills={kills} killed_bodies={len(killed)} leftovers={len(leftovers)} "
        f"worker={stack.worker.stats}"
    )
