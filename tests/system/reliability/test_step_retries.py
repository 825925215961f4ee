"""Failing steps retry after their policy's delays, then succeed or fail the run."""

from __future__ import annotations

import itertools

import pytest
from ledger import read_ledger
from ledger_checks import executions
from stack_waits import wait_all

from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def test_a_step_failing_twice_succeeds_on_its_third_attempt_after_1_then_2_seconds(
    make_stack, ledger
):
    stack = make_stack(timeout=5.0)
    handle = stack.trigger("ledger-flaky", {"fail_times": 2})
    (run,) = wait_all(stack, [handle.run_id], timeout=30)
    store = stack.client.store
    result = stack.client.result(handle.run_id)
    (entry,) = store.load_journal(handle.run_id)
    delays = [
        event.delay
        for event in store.list_events(handle.run_id)
        if event.kind is EventKind.STEP_RETRY_SCHEDULED
    ]
    attempts = executions(read_ledger(ledger))[handle.run_id, "flaky#0"]
    gaps = [later.start - earlier.end for earlier, later in itertools.pairwise(attempts)]

    assert run.status is RunStatus.COMPLETED
    assert result is not None
    assert result.output == 3
    assert (entry.key, entry.status, entry.attempts) == ("flaky#0", EntryStatus.COMPLETED, 3)
    # min_timeout=1, factor=2, randomize=False: 1 s after the first failure, 2 s after the second.
    assert delays == pytest.approx([1.0, 2.0], abs=0.1)
    assert [attempt.error for attempt in attempts] == ["flaky", "flaky", None]
    assert gaps[0] >= 1.0
    assert gaps[1] >= 2.0
    assert all(gap < delay + 1.5 for gap, delay in zip(gaps, [1.0, 2.0], strict=True))


def test_a_step_failing_every_attempt_fails_the_run_with_its_traceback(make_stack, ledger):
    stack = make_stack(timeout=5.0)
    handle = stack.trigger("ledger-declined", {"card": "4000-0000-0000-0002"})
    (run,) = wait_all(stack, [handle.run_id], timeout=30)
    (entry,) = stack.client.store.load_journal(handle.run_id)
    attempts = executions(read_ledger(ledger))[handle.run_id, "always_declined#0"]

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "card 4000-0000-0000-0002 declined by the issuer" in run.error.message
    assert "Traceback (most recent call last)" in run.error.traceback
    assert "in always_declined" in run.error.traceback
    assert "ValueError: card 4000-0000-0000-0002 declined by the issuer" in run.error.traceback
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 2)
    assert len(attempts) == 2
