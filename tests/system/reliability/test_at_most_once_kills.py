"""``at_most_once`` steps whose body is SIGKILLed: the attempt is never run again.

The body kills its own worker process (a real SIGKILL, so nothing after it
runs, no handler sees it) on its first start, after the STARTED record. SQS
redelivers the message once the visibility timeout passes; the invocation that
takes the run finds the step STARTED with no result, counts that attempt as
failed with ``StepInterruptedError`` and lets the retry policy decide. Facts
come from the ledger the bodies append to (one start per attempt), the
decisions the retry policy noted, the journal and the timeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ledger import read_ledger
from ledger_checks import executions
from ledger_tasks import DECISIONS_SUFFIX
from stack_waits import wait_all

from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

#: A 3 s invocation's lease ends 8 s after it was taken: the redelivery after
#: 9 s finds the killed holder's lease expired and takes the run at once.
STACK = {"timeout": 3.0, "visibility_timeout": 9}


def decisions(ledger: Path) -> list[str]:
    path = Path(str(ledger) + DECISIONS_SUFFIX)
    return path.read_text().split() if path.exists() else []


def test_an_interrupted_attempt_fails_with_step_interrupted_and_the_policy_retries_it(
    make_stack, ledger
):
    stack = make_stack(**STACK)
    handle = stack.trigger("ledger-at-most-once", {"wire": "retried", "amount": 42})
    (run,) = wait_all(stack, [handle.run_id], timeout=90)
    attempts = executions(read_ledger(ledger))[handle.run_id, "wire_retried#0"]
    (entry,) = stack.client.store.load_journal(handle.run_id)
    retries = [
        e
        for e in stack.client.store.list_events(handle.run_id)
        if e.kind is EventKind.STEP_RETRY_SCHEDULED
    ]

    assert run.status is RunStatus.COMPLETED
    assert stack.client.result(handle.run_id).output == 42
    assert stack.worker.stats.crashes == 1  # the body's SIGKILL, and nothing else
    # One start per attempt: the killed one (no end line) and the retry.
    assert [a.end is None for a in attempts] == [True, False]
    assert len({a.pid for a in attempts}) == 2  # the retry ran in a fresh environment
    # The policy was asked about attempt 1 once, as a StepInterruptedError.
    assert decisions(ledger) == ["StepInterruptedError"]
    assert len(retries) == 1
    assert "attempt 1 of 2 failed" in retries[0].detail
    assert (entry.status, entry.attempts) == (EntryStatus.COMPLETED, 2)


# "once": max_attempts=1; "filtered": three attempts, but retry_on names only ConnectionError.
@pytest.mark.parametrize("wire", ["once", "filtered"])
def test_with_no_retry_an_interrupted_step_fails_without_running_again(make_stack, ledger, wire):
    stack = make_stack(**STACK)
    handle = stack.trigger("ledger-at-most-once", {"wire": wire, "amount": 7})
    (run,) = wait_all(stack, [handle.run_id], timeout=90)
    attempts = executions(read_ledger(ledger))[handle.run_id, f"wire_{wire}#0"]
    (entry,) = stack.client.store.load_journal(handle.run_id)

    assert run.status is RunStatus.FAILED
    assert stack.worker.stats.crashes == 1
    assert [a.end is None for a in attempts] == [True]  # started once, never again
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 1)
    assert entry.error is not None
    assert entry.error.type.endswith("StepInterruptedError")
    assert f"step 'wire_{wire}#0' attempt 1 was interrupted" in entry.error.message
    assert run.error is not None
    assert "StepInterruptedError" in run.error.message
