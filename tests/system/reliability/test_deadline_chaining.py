"""Runs longer than one Lambda invocation continue in fresh ones, each step body run once."""

from __future__ import annotations

from collections import Counter

import pytest
from ledger import read_ledger
from ledger_checks import executions, journal_problems, step_entries
from stack_waits import wait_all

from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def test_forty_steps_outlive_a_three_second_timeout_and_each_body_runs_once(make_stack, ledger):
    stack = make_stack(timeout=3.0, reserved_concurrency=1)
    handle = stack.trigger("ledger-steps", {"steps": 40, "seconds": 0.25, "seed": "long"})
    (run,) = wait_all(stack, [handle.run_id], timeout=60)
    journal = stack.client.store.load_journal(handle.run_id)
    worker = stack.worker.stats

    assert run.status is RunStatus.COMPLETED
    assert run.invocations >= 4  # 10 s of steps, about 1.5 s of them per 3 s invocation
    assert worker.invocations >= run.invocations
    assert worker.timeouts == 0  # it suspended before the deadline; Lambda never killed it
    assert journal_problems(journal) == []
    assert [entry.key for entry in step_entries(journal)] == [f"work#{i}" for i in range(40)]
    found = executions(read_ledger(ledger))
    assert Counter(len(runs) for runs in found.values()) == {1: 40}
    assert all(runs[0].finished for runs in found.values())


def test_a_run_chains_through_thirty_invocations(make_stack, ledger):
    # Lambda stops SQS->Lambda->SQS loops after about 16 hops unless told otherwise;
    # the worker counts hops itself and lets this run through.
    stack = make_stack(Settings(max_hops=40), timeout=3.0, reserved_concurrency=1)
    handle = stack.trigger("ledger-chain", {"steps": 30})
    (run,) = wait_all(stack, [handle.run_id], timeout=60)
    result = stack.client.result(handle.run_id)
    journal = stack.client.store.load_journal(handle.run_id)

    assert run.status is RunStatus.COMPLETED
    assert result is not None
    assert result.output == sum(range(30))
    assert run.invocations == 30  # one step per invocation
    assert journal_problems(journal) == []
    assert len(journal) == 30
    assert Counter(len(runs) for runs in executions(read_ledger(ledger)).values()) == {1: 30}
