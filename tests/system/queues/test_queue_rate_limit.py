"""A rate limit admits no more than its limit of starts in any window of its period.

Everything asserted here is a fact the system recorded: each run's ``started_at``
is the very instant the rate limiter recorded its admission, and each refusal
is a RATE_LIMITED timeline event at the instant the limiter read a full
window. Nothing depends on how fast this machine is.
"""

from __future__ import annotations

import pytest
from queue_tasks import RATED
from stack_waits import wait_all

from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

RUNS = 30


def _in_window(starts: list[float], end: float, period: float) -> int:
    """Starts in ``(end - period, end]``: the window the limiter reads at ``end``.

    The comparison is the limiter's own (``t > now - period``) on the same floats,
    so no tolerance is needed.
    """
    return sum(1 for t in starts if end - period < t <= end)


def test_five_per_ten_seconds_admits_at_most_five_starts_in_any_ten_seconds(make_stack):
    limit = RATED.rate_limit
    assert limit is not None
    stack = make_stack(
        Settings(short_wait_seconds=0),
        timeout=10.0,
        reserved_concurrency=3,
        visibility_timeout=10,
        scheduler_interval=1.0,
        batch_size=5,
    )
    ids = [stack.trigger("q-rated", {"label": f"r{i}"}).run_id for i in range(RUNS)]
    runs = wait_all(stack, ids, timeout=300)
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * RUNS

    starts = sorted(r.started_at.timestamp() for r in runs if r.started_at is not None)
    assert len(starts) == RUNS
    # Any half-open window of a period holds at most `limit` starts: the most
    # crowded one ends at a start.
    crowded = max(_in_window(starts, end, limit.period) for end in starts)
    assert crowded <= limit.limit, f"{crowded} starts in {limit.period} s, limit {limit.limit}"

    # Runs lined up behind the limit were delayed, not failed (all completed
    # above): each refusal is recorded with the wait the limiter computed, and
    # a refusal for a full window was made at an instant whose window already
    # held `limit` recorded starts.
    refusals = [
        event
        for run_id in ids
        for event in stack.client.store.list_events(run_id)
        if event.kind == EventKind.RATE_LIMITED
    ]
    assert refusals
    assert all(e.delay is not None and 0 < e.delay <= limit.period for e in refusals)
    assert any(_in_window(starts, e.at.timestamp(), limit.period) == limit.limit for e in refusals)
