"""Every resume message delivered twice, at once or one after the other: nothing runs twice."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from ledger import read_ledger
from ledger_checks import executions, journal_problems, overlapping_executions
from stack_waits import wait_all, worker_reports

from durable_lambda.engine.state import RunStatus
from durable_lambda.local import FunctionPool, InvocationResult, SqsPoller
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

PAYLOADS = [
    {"steps": 4, "seconds": 0.1, "wait_after": 2, "wait_seconds": 1, "seed": f"dup-{i}"}
    for i in range(6)
]


class DuplicatingPool:
    """Stands in for the worker function behind the event source mapping: every batch
    goes to two execution environments, concurrently or one after the other (seeded).

    The mapping acts on the first invocation's response; the duplicate's is ignored,
    as when SQS hands a message to a second consumer.
    """

    def __init__(self, pool: FunctionPool, seed: int) -> None:
        self.pool = pool
        self.config = pool.config
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.modes: Counter[str] = Counter()
        self.overlapped = 0

    def invoke(self, event: Any) -> InvocationResult:
        with self._lock:
            concurrent = self._rng.random() < 0.5
        self.modes["concurrent" if concurrent else "sequential"] += 1
        if not concurrent:
            first = self.pool.invoke(event)
            self.pool.invoke(event)
            return first
        spans: list[tuple[float, float]] = []

        def duplicate() -> None:
            started = time.monotonic()
            self.pool.invoke(event)
            spans.append((started, time.monotonic()))

        thread = threading.Thread(target=duplicate)
        started = time.monotonic()
        thread.start()
        first = self.pool.invoke(event)
        ended = time.monotonic()
        thread.join()
        (other,) = spans
        with self._lock:
            self.overlapped += int(other[0] < ended and started < other[1])
        return first


def _outputs(stack, handles) -> list[Any]:
    runs = wait_all(stack, [h.run_id for h in handles], timeout=60)
    assert [run.status for run in runs] == [RunStatus.COMPLETED] * len(handles)
    outputs = []
    for handle in handles:
        result = stack.client.result(handle.run_id)
        assert result is not None
        outputs.append(result.output)
    return outputs


def test_duplicate_deliveries_execute_no_step_twice_and_change_no_output(make_stack, ledger):
    stack = make_stack(
        Settings(short_wait_seconds=0), timeout=5.0, reserved_concurrency=4, batch_size=3
    )
    # Single delivery first: the reference outputs.
    single = _outputs(stack, [stack.trigger("ledger-steps", p) for p in PAYLOADS])
    # Then the same payloads with every message delivered twice.
    stack.poller.stop()
    duplicating = DuplicatingPool(stack.worker, seed=7)
    sqs = stack.session.client("sqs")
    stack.poller = SqsPoller(
        duplicating, sqs, stack.settings.resume_queue_url, batch_size=3, pollers=2
    )
    stack.poller.start()
    handles = [stack.trigger("ledger-steps", p) for p in PAYLOADS]
    doubled = _outputs(stack, handles)
    lines = [line for line in read_ledger(ledger) if line["run"] in {h.run_id for h in handles}]
    actions = Counter(
        report["action"]
        for report in worker_reports(stack)
        if report["run_id"] in {h.run_id for h in handles}
    )

    assert doubled == single
    assert overlapping_executions(lines) == []
    assert Counter(len(runs) for runs in executions(lines).values()) == {1: 4 * len(PAYLOADS)}
    for handle in handles:
        assert journal_problems(stack.client.store.load_journal(handle.run_id)) == []
    # Both kinds of duplicate happened: one racing the original (it found the run
    # busy) and one arriving after it (its epoch had passed).
    assert duplicating.modes["concurrent"] > 0
    assert duplicating.modes["sequential"] > 0
    assert duplicating.overlapped > 0
    assert actions["busy"] > 0
    assert actions["stale"] > 0
