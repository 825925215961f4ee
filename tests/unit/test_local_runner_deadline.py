"""LocalRunner holds each invocation to its deadline, as Lambda does.

Work that runs past the deadline is killed: nothing it was writing is stored,
the message comes back after the lease expires, and a step that never fits is
dead-lettered and fails the run naming the step. Deadlines here are 0.3 s
with 0.5 s sleeps, so every overrun is certain however loaded the machine.
"""

from __future__ import annotations

import time

from durable_lambda import RunStatus, step, task
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.testing import LocalRunner

DEADLINE = 0.3
OVERRUN = 0.5


def test_a_step_that_overruns_once_is_killed_unrecorded_and_rerun_in_the_next_invocation(
    registry,
):
    bodies: list[int] = []

    @step
    def slow(n: int) -> int:
        bodies.append(n)
        if len(bodies) == 1:
            time.sleep(OVERRUN)  # only the first execution runs past the deadline
        return n

    @task(id="overrun-once", registry=registry)
    async def once(payload: int) -> int:
        return await slow(payload)

    runner = LocalRunner(registry=registry, deadline=DEADLINE)
    result = runner.run(once, 7)
    assert result.status is RunStatus.COMPLETED
    assert result.output == 7
    assert bodies == [7, 7]  # re-run: the killed execution recorded nothing
    [entry] = runner.journal(result.run_id)
    assert (entry.key, entry.status, entry.attempts) == ("slow#0", EntryStatus.COMPLETED, 1)
    assert [r.action for r in runner.reports] == ["killed", "executed"]
    assert runner.invocations[result.run_id] == 2  # the killed one counts


def test_a_step_that_never_fits_is_dead_lettered_and_fails_the_run_naming_it(registry):
    bodies: list[int] = []

    @step
    def slow(n: int) -> int:
        bodies.append(n)
        time.sleep(OVERRUN)
        return n

    @task(id="never-fits", registry=registry)
    async def never(payload: int) -> int:
        return await slow(payload)

    runner = LocalRunner(registry=registry, deadline=DEADLINE, max_receive_count=3)
    result = runner.run(never, 1)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "step 'slow#0' ran past the 0.3 s deadline in 3 invocations" in result.error.message
    assert "dead-lettered" in result.error.message
    assert bodies == [1, 1, 1]
    assert runner.journal(result.run_id) == []
    assert [r.action for r in runner.reports] == ["killed", "killed", "killed"]


def test_a_task_body_that_sleeps_past_the_deadline_is_killed_before_its_checkpoint(registry):
    @task(id="slow-body", registry=registry)
    async def slow_body(payload: int) -> int:
        time.sleep(OVERRUN)  # noqa: ASYNC251 - blocking work in a task body is the point
        return payload

    runner = LocalRunner(registry=registry, deadline=DEADLINE, max_receive_count=2)
    result = runner.run(slow_body, 1)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "task 'slow-body' ran past the 0.3 s deadline in 2 invocations" in result.error.message


def test_steps_recorded_before_a_kill_are_replayed_not_rerun(registry):
    bodies: list[str] = []

    @step
    def quick(label: str) -> str:
        bodies.append(label)
        return label

    @step
    def slow(label: str) -> str:
        bodies.append(label)
        if bodies.count(label) == 1:
            time.sleep(OVERRUN)
        return label

    @task(id="mixed", registry=registry)
    async def mixed(payload: None) -> list[str]:
        return [await quick("a"), await slow("b")]

    runner = LocalRunner(registry=registry, deadline=DEADLINE)
    result = runner.run(mixed, None)
    assert result.output == ["a", "b"]
    assert bodies == ["a", "b", "b"]
    assert [e.key for e in runner.journal(result.run_id)] == ["quick#0", "slow#0"]


def test_work_within_the_deadline_is_never_killed(registry):
    @step
    def quick(n: int) -> int:
        return n

    @task(id="fits", registry=registry)
    async def fits(payload: int) -> int:
        return await quick(payload) + await quick(payload)

    runner = LocalRunner(registry=registry, deadline=30.0)
    result = runner.run(fits, 2)
    assert result.output == 4
    assert [r.action for r in runner.reports] == ["executed"]
