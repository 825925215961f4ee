"""A token's completion wakes its run through the resume queue at once, on the emulated stack."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stack_waits import wait_all
from system_fixtures import StackTasks

from durable_lambda.engine.journal import EntryKind
from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import TokenStatus
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings


@pytest.fixture
def stack_tasks() -> StackTasks:
    return StackTasks(("token_tasks",), Path(__file__).parent)


def _pending_token(stack: EmulatedStack, run_id: str, timeout: float) -> str:
    """The run's token once the run has suspended on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.client.get_run(run_id)
        if run.status is RunStatus.SUSPENDED:
            for entry in stack.client.store.load_journal(run_id):
                if entry.kind is EntryKind.TOKEN:
                    return str(json.loads(entry.result or "{}")["id"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not suspend on a token within {timeout} s")


@pytest.mark.emulator
@pytest.mark.slow
def test_a_completion_wakes_the_run_through_its_nudge_not_its_wake_time(make_stack):
    stack = make_stack(Settings(), timeout=10.0)
    handle = stack.trigger("token-approval", {"timeout": 2 * 86400})
    token_id = _pending_token(stack, handle.run_id, timeout=60)
    suspended = stack.client.get_run(handle.run_id)
    assert suspended.waiting_children
    assert suspended.wake_at is not None  # six hours out (the recheck), a timer

    stack.client.complete_token(token_id, {"approved": True})
    (run,) = wait_all(stack, [handle.run_id], timeout=60)

    assert run.status is RunStatus.COMPLETED
    assert stack.client.result(handle.run_id).output == {"approved": True}  # type: ignore[union-attr]
    assert run.invocations == 2
    # Finished hours before its own wake time: the nudge woke it, not a timer
    # or the scheduler's sweep.
    assert run.finished_at is not None
    assert run.finished_at < suspended.wake_at
    events = [e.kind for e in stack.client.store.list_events(handle.run_id)]
    assert events.count(EventKind.INVOCATION_STARTED) == 2
    assert stack.client.retrieve_token(token_id).status is TokenStatus.COMPLETED
