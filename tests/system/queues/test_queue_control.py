"""Queue control at runtime: a raised limit and a resumed queue take effect at once."""

from __future__ import annotations

import time

import pytest
from ledger import read_ledger
from queue_helpers import first_starts, flow_client, intervals, max_concurrency, wait_until
from queue_tasks import ELASTIC
from stack_waits import wait_all

from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

TIMEOUT = 150.0  # above PATIENCE: a gated run must not time out while the test waits
SCHEDULER_INTERVAL = 1.0
#: Liveness bound of each wait: generous for a busy 2-core machine. How fast a
#: raised limit or a resume takes effect is a benchmark figure, not asserted here.
PATIENCE = 120.0


def _stack(make_stack):
    return make_stack(
        Settings(short_wait_seconds=0),
        timeout=TIMEOUT,  # a gated step holds its unit until the test opens the gate
        reserved_concurrency=8,  # 5 held at once, and pollers to spare
        visibility_timeout=200,  # above the function timeout: no redelivery of a live run
        scheduler_interval=SCHEDULER_INTERVAL,
        batch_size=1,
    )


def _statuses(stack, run_ids):
    return [stack.client.get_run(r).status for r in run_ids]


def test_a_limit_raised_from_two_to_five_runs_five_at_once_within_a_tick(
    make_stack, ledger, tmp_path
):
    stack = _stack(make_stack)
    client = flow_client(stack)
    gate = tmp_path / "gate"
    ids = [
        stack.trigger("q-elastic", {"gate": str(gate), "label": f"r{i}"}).run_id for i in range(8)
    ]
    wait_until(
        lambda: (
            _statuses(stack, ids).count(RunStatus.WAITING_FOR_SLOT) == 6
            and len(first_starts(read_ledger(ledger))) == 2
        ),
        timeout=PATIENCE,
        what="two runs holding the gate and six parked",
    )

    raised_at = time.time()
    state = client.set_queue_limit(ELASTIC.name, 5)
    assert state.limit == 5
    fifth = wait_until(
        lambda: len(s := sorted(first_starts(read_ledger(ledger)).values())) >= 5 and s[4],
        timeout=PATIENCE,
        what="five runs started",
    )
    print(f"limit raised: fifth run started {fifth - raised_at:.3f} s later")  # noqa: T201
    ticks = stack.ticker.stats.ticks
    wait_until(
        lambda: stack.ticker.stats.ticks >= ticks + 2,
        timeout=PATIENCE,
        what="two more scheduler ticks",
    )  # nothing more starts while five hold the gate, whatever the scheduler does
    assert len(first_starts(read_ledger(ledger))) == 5
    assert _statuses(stack, ids).count(RunStatus.WAITING_FOR_SLOT) == 3
    state = client.queue_state(ELASTIC.name)
    assert (state.count, state.waiting, state.limit) == (5, 3, 5)

    gate.touch()
    runs = wait_all(stack, ids, timeout=PATIENCE)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 8
    peak, _ = max_concurrency(intervals(read_ledger(ledger), killed_bound=TIMEOUT))
    assert peak == 5
    assert client.set_queue_limit(ELASTIC.name, None).limit == ELASTIC.concurrency_limit


def test_a_paused_queue_starts_nothing_until_resumed(make_stack, ledger):
    stack = _stack(make_stack)
    client = flow_client(stack)
    assert client.pause_queue(ELASTIC.name).paused
    ids = [stack.trigger("q-elastic", {"seconds": 0.1, "label": f"r{i}"}).run_id for i in range(6)]
    wait_until(
        lambda: set(_statuses(stack, ids)) == {RunStatus.WAITING_FOR_SLOT},
        timeout=PATIENCE,
        what="every run to park on the paused queue",
    )
    ticks = stack.ticker.stats.ticks
    wait_until(
        lambda: stack.ticker.stats.ticks >= ticks + 3,
        timeout=PATIENCE,
        what="three more scheduler ticks",
    )  # the scheduler ticked, and handed nothing on
    assert read_ledger(ledger) == []
    assert set(_statuses(stack, ids)) == {RunStatus.WAITING_FOR_SLOT}
    assert [stack.client.get_run(r).invocations for r in ids] == [1] * 6
    state = client.queue_state(ELASTIC.name)
    assert (state.paused, state.count, state.waiting) == (True, 0, 6)

    resumed_at = time.time()
    assert not client.resume_queue(ELASTIC.name).paused
    runs = wait_all(stack, ids, timeout=PATIENCE)

    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 6
    firsts = sorted(first_starts(read_ledger(ledger)).values())
    assert len(firsts) == 6
    assert firsts[0] >= resumed_at  # nothing ran while paused
    print(f"resumed: first run started {firsts[0] - resumed_at:.3f} s later")  # noqa: T201
    peak, _ = max_concurrency(intervals(read_ledger(ledger), killed_bound=TIMEOUT))
    assert peak <= ELASTIC.concurrency_limit
    state = client.queue_state(ELASTIC.name)
    assert (state.paused, state.count, state.waiting) == (False, 0, 0)
