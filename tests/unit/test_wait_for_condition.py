"""``wait.for_condition``: checks are steps, pauses are waits, state threads through them."""

from __future__ import annotations

import asyncio
import random

import pytest

from durable_lambda import ConfigurationError, RetryPolicy, RunStatus, WaitStrategy, task, wait
from durable_lambda.engine.journal import EntryKind, EntryStatus
from durable_lambda.errors import ConditionNotMetError, StepFailedError
from durable_lambda.testing import LocalRunner

# Gaps between recorded times are compared with this slack: the clock is real
# time plus skipped waits, and the delays compared differ by seconds.
SLACK = 0.5


def _waits(runner: LocalRunner, run_id: str) -> list[float]:
    return [
        (e.wake_at - e.started_at).total_seconds()
        for e in runner.journal(run_id)
        if e.kind is EntryKind.WAIT and e.wake_at is not None and e.started_at is not None
    ]


def _checks(runner: LocalRunner, run_id: str) -> list[str]:
    return [e.key for e in runner.journal(run_id) if e.kind is EntryKind.STEP]


def test_state_threads_through_checks_and_the_met_state_is_returned(registry, runner):
    seen: list[int] = []

    def poll_job(state: int) -> int:
        seen.append(state)
        return state + 1

    @task(id="poll", registry=registry)
    async def poll(payload: None) -> int:
        return await wait.for_condition(poll_job, until=lambda s: s >= 3, initial_state=0)

    result = runner.run(poll, None)
    assert result.output == 3
    assert seen == [0, 1, 2]  # each body once: replays returned the recorded states
    assert _checks(runner, result.run_id) == ["poll_job#0", "poll_job#1", "poll_job#2"]
    delays = _waits(runner, result.run_id)
    assert len(delays) == 2  # the default strategy: 5 s, then 7.5 s
    assert delays[0] == pytest.approx(5.0, abs=SLACK)
    assert delays[1] == pytest.approx(7.5, abs=SLACK)
    # Each pause suspended the run: one invocation per check, no Lambda held.
    assert runner.invocations[result.run_id] == 3


def test_delays_grow_by_the_factor_up_to_the_cap(registry, runner):
    strategy = WaitStrategy(initial_delay=10, factor=3, max_delay=50, max_attempts=5)

    @task(id="poll-cap", registry=registry)
    async def poll(payload: None) -> int:
        return await wait.for_condition(
            lambda s: s + 1, until=lambda s: s >= 5, initial_state=0, strategy=strategy
        )

    result = runner.run(poll, None)
    assert result.output == 5
    assert _checks(runner, result.run_id) == [f"condition#{i}" for i in range(5)]
    assert _waits(runner, result.run_id) == pytest.approx([10, 30, 50, 50], abs=SLACK)


def test_an_immediate_success_waits_zero_times(registry, runner):
    async def ready(state: dict) -> dict:
        return {"ready": True}

    @task(id="poll-now", registry=registry)
    async def poll(payload: None) -> dict:
        return await wait.for_condition(ready, until=lambda s: s["ready"])

    result = runner.run(poll, None)
    assert result.output == {"ready": True}
    assert [e.kind for e in runner.journal(result.run_id)] == [EntryKind.STEP]
    assert runner.invocations[result.run_id] == 1


def test_max_attempts_exhausted_raises_condition_not_met_with_the_last_state(registry, runner):
    strategy = WaitStrategy(initial_delay=60, factor=1, max_attempts=3)

    @task(id="poll-exhausted", registry=registry)
    async def poll(payload: None) -> dict:
        try:
            await wait.for_condition(
                lambda s: s + 1, until=lambda s: s > 10, initial_state=0, strategy=strategy
            )
        except ConditionNotMetError as exc:
            return {"state": exc.state, "attempts": exc.attempts, "name": exc.name}
        return {}

    result = runner.run(poll, None)
    assert result.output == {"state": 3, "attempts": 3, "name": "condition"}
    # No pause after the last check: the error is raised at once.
    assert len(_checks(runner, result.run_id)) == 3
    assert _waits(runner, result.run_id) == pytest.approx([60, 60], abs=SLACK)


def test_an_uncaught_condition_not_met_fails_the_run_without_retry(registry, runner):
    @task(id="poll-fails", registry=registry, retry=RetryPolicy(max_attempts=3))
    async def poll(payload: None) -> int:
        return await wait.for_condition(
            lambda _: 0, until=bool, strategy=WaitStrategy(initial_delay=1, max_attempts=2)
        )

    result = runner.run(poll, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("ConditionNotMetError")
    assert "not met after 2 checks" in result.error.message
    assert runner.client.get_run(result.run_id).attempt == 1  # terminal: no task retry


def test_a_check_that_raises_propagates_after_its_own_retries(registry, runner):
    calls: list[int] = []

    def flaky(state: int) -> int:
        calls.append(state)
        raise ConnectionError("down")

    @task(id="poll-raises", registry=registry, retry=RetryPolicy(max_attempts=5))
    async def poll(payload: None) -> str:
        try:
            await wait.for_condition(
                flaky,
                until=bool,
                initial_state=7,
                retry=RetryPolicy(max_attempts=2, randomize=False),
            )
        except StepFailedError as exc:
            return f"{exc.step}: {exc.error_type}"
        return "met"

    result = runner.run(poll, None)
    assert result.output == "flaky#0: ConnectionError"
    assert calls == [7, 7]  # the check's own policy (2), not the task's (5)
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 2)


def test_a_check_retried_after_a_failure_is_the_same_check(registry, runner):
    calls: list[int] = []

    def flaky(state: int) -> int:
        calls.append(state)
        if len(calls) == 1:
            raise ConnectionError("blip")
        return state + 1

    @task(id="poll-blip", registry=registry)
    async def poll(payload: None) -> int:
        return await wait.for_condition(
            flaky, until=lambda s: s >= 2, initial_state=0, retry=RetryPolicy(randomize=False)
        )

    result = runner.run(poll, None)
    assert result.output == 2
    assert calls == [0, 0, 1]
    assert _checks(runner, result.run_id) == ["flaky#0", "flaky#1"]


class _Draws:
    """A random source whose every draw differs, so a replay that drew again would show."""

    def __init__(self) -> None:
        self.rng = random.Random(3)

    def random(self) -> float:
        return self.rng.random()


def test_jittered_delays_are_recorded_and_replayed_as_recorded(registry):
    runner = LocalRunner(registry=registry, rng=_Draws())
    strategy = WaitStrategy(initial_delay=100, factor=1, max_attempts=4, randomize=True)

    @task(id="poll-jitter", registry=registry)
    async def poll(payload: None) -> int:
        return await wait.for_condition(
            lambda s: s + 1, until=lambda s: s >= 4, initial_state=0, strategy=strategy
        )

    handle = runner.trigger(poll, None)
    runner.step_once()
    runner.step_once()  # two invocations: two checks, two recorded waits
    first = [(e.key, e.wake_at) for e in runner.journal(handle.run_id) if e.kind is EntryKind.WAIT]
    assert len(first) == 2
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.output == 4
    waits = [(e.key, e.wake_at) for e in runner.journal(handle.run_id) if e.kind is EntryKind.WAIT]
    assert waits[:2] == first  # replays kept the recorded wake times, whatever they drew
    delays = _waits(runner, handle.run_id)
    assert len(delays) == 3
    assert all(0 <= d <= 100 + SLACK for d in delays)
    assert len({round(d) for d in delays}) > 1  # jittered, not the constant 100


def test_checks_replay_across_deadline_hops_without_running_again(registry):
    # Each check takes 1 s of a 1.5 s invocation (the clock jumps inside the
    # body), leaving less than the 0.75 s safety margin: every invocation makes
    # one check and continues in a fresh one, replaying the earlier checks.
    runner = LocalRunner(registry=registry, deadline=1.5)
    seen: list[int] = []

    async def poll_job(state: int) -> int:
        seen.append(state)
        runner.clock.advance(1.0)
        return state * 2

    @task(id="poll-hops", registry=registry)
    async def poll(payload: int) -> int:
        return await wait.for_condition(
            poll_job,
            until=lambda s: s >= 16,
            initial_state=payload,
            strategy=WaitStrategy(initial_delay=0, factor=1, max_delay=0),
        )

    result = runner.run(poll, 1)
    assert result.output == 16
    assert seen == [1, 2, 4, 8]  # no check ran twice across the hops
    assert runner.invocations[result.run_id] == 4
    assert _checks(runner, result.run_id) == [f"poll_job#{i}" for i in range(4)]


def test_a_pause_within_short_wait_sleeps_in_process(registry):
    runner = LocalRunner(registry=registry)
    strategy = WaitStrategy(initial_delay=0.5, factor=1, max_attempts=3)

    @task(id="poll-short", registry=registry)
    async def poll(payload: None) -> int:
        return await wait.for_condition(
            lambda s: s + 1, until=lambda s: s >= 3, initial_state=0, strategy=strategy
        )

    result = runner.run(poll, None)
    assert result.output == 3
    assert runner.invocations[result.run_id] == 1
    assert all(e.status is EntryStatus.COMPLETED for e in runner.journal(result.run_id))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_delay": -1}, "initial_delay must be >= 0"),
        ({"factor": 0.5}, "factor must be >= 1"),
        ({"initial_delay": 10, "max_delay": 5}, "max_delay (5) must be >= initial_delay (10)"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": 2.5}, "max_attempts must be an int"),
        ({"initial_delay": float("inf")}, "initial_delay must be finite"),
        ({"factor": "2"}, "factor must be a number"),
    ],
)
def test_a_meaningless_strategy_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ConfigurationError, match="WaitStrategy") as info:
        WaitStrategy(**kwargs)
    assert message in str(info.value)


def test_for_condition_outside_a_task_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="inside a running task"):
        asyncio.run(wait.for_condition(lambda s: s, until=bool))
    with pytest.raises(ConfigurationError, match="WaitStrategy"):
        wait.for_condition(lambda s: s, until=bool, strategy={"initial_delay": 1})  # type: ignore[arg-type]
