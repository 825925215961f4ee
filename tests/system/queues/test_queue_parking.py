"""Parked runs: they cost no invocation while they wait, and start in priority order."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from ledger import read_ledger
from queue_helpers import first_starts, flow_client, intervals, max_concurrency, wait_until
from queue_tasks import SINGLE
from stack_waits import wait_all, worker_reports

from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

#: Long enough for a gated step to hold its unit for many scheduler ticks.
TIMEOUT = 30.0


def _stack(make_stack):
    return make_stack(
        Settings(short_wait_seconds=0),
        timeout=TIMEOUT,
        reserved_concurrency=4,
        visibility_timeout=30,
        scheduler_interval=1.0,  # many ticks while the runs wait: none may cost them anything
        batch_size=1,  # a blocked step never holds other messages of its batch back
    )


def _hold_slot(stack, ledger, gate):
    """Trigger a run that takes the queue's only unit and holds it until ``gate`` appears."""
    blocker = stack.trigger("q-single", {"gate": str(gate), "label": "blocker"})
    wait_until(
        lambda: blocker.run_id in first_starts(read_ledger(ledger)),
        timeout=30,
        what="the blocker to start",
    )
    return blocker


def _parked(stack, run_ids):
    return all(stack.client.get_run(r).status is RunStatus.WAITING_FOR_SLOT for r in run_ids)


def test_parked_runs_cost_no_invocations_however_long_they_wait(make_stack, ledger, tmp_path):
    stack = _stack(make_stack)
    gate = tmp_path / "gate"
    blocker = _hold_slot(stack, ledger, gate)
    handles = [stack.trigger("q-single", {"label": f"p{i}"}) for i in range(5)]
    ids = [h.run_id for h in handles]
    wait_until(lambda: _parked(stack, ids), timeout=30, what="all five runs to park")

    ticks = stack.ticker.stats.ticks
    time.sleep(8)  # parked through several scheduler ticks and idle pollers
    assert stack.ticker.stats.ticks >= ticks + 5
    assert _parked(stack, ids)
    assert [stack.client.get_run(r).invocations for r in ids] == [1] * 5
    assert first_starts(read_ledger(ledger)).keys() == {blocker.run_id}

    gate.touch()
    runs = wait_all(stack, [blocker.run_id, *ids], timeout=60)

    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 6
    # One invocation parked each run, one ran it, however many hand-offs it waited for.
    assert [stack.client.get_run(r).invocations for r in ids] == [2] * 5
    messages = Counter(report["run_id"] for report in worker_reports(stack))
    assert [messages[r] for r in ids] == [2] * 5  # no message for a parked run but its grant
    peak, _ = max_concurrency(intervals(read_ledger(ledger), killed_bound=TIMEOUT))
    assert peak == 1
    state = flow_client(stack).queue_state(SINGLE.name)
    assert (state.count, state.waiting) == (0, 0)


def test_parked_runs_start_in_priority_order_fifo_within_a_priority(make_stack, ledger, tmp_path):
    stack = _stack(make_stack)
    gate = tmp_path / "gate"
    blocker = _hold_slot(stack, ledger, gate)
    plan = [("a", 0), ("b", 5), ("c", 5), ("d", 0), ("e", 9), ("f", -3), ("g", 9), ("h", 0)]
    ids = {}
    for label, priority in plan:
        ids[label] = stack.trigger("q-single", {"label": label}, priority=priority).run_id
    wait_until(lambda: _parked(stack, list(ids.values())), timeout=30, what="all runs to park")

    gate.touch()
    wait_all(stack, [blocker.run_id, *ids.values()], timeout=60)

    # Higher priority first; within a priority, in trigger order (Python's sort is stable).
    expected = [label for label, _ in sorted(plan, key=lambda p: -p[1])]
    assert expected == ["e", "g", "b", "c", "a", "d", "h", "f"]
    firsts = first_starts(read_ledger(ledger))
    by_ledger = sorted(ids, key=lambda label: firsts[ids[label]])
    assert by_ledger == expected
    records = {label: stack.client.get_run(run_id) for label, run_id in ids.items()}
    by_record = sorted(ids, key=lambda label: records[label].started_at)
    assert by_record == expected
    peak, _ = max_concurrency(intervals(read_ledger(ledger), killed_bound=TIMEOUT))
    assert peak == 1
