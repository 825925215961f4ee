"""Plugins hear invocations, steps and attempts; a failing plugin never fails the run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from durable_lambda import RetryPolicy, RunStatus, plugins, step, task


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_invocation_start(self, info: plugins.EventInfo) -> None:
        self.events.append(("invocation_start", info.attempt, info.first_invocation))

    def on_invocation_end(self, info: plugins.EventInfo, outcome: plugins.EventOutcome) -> None:
        self.events.append(("invocation_end", outcome.status.value, info.first_invocation))

    def on_step_start(self, info: plugins.EventInfo) -> None:
        self.events.append(("step_start", info.step_key, info.scope, info.attempt))

    def on_step_end(self, info: plugins.EventInfo, outcome: plugins.EventOutcome) -> None:
        self.events.append(("step_end", info.step_key, outcome.status.value))

    def on_attempt(self, info: plugins.EventInfo, outcome: plugins.EventOutcome) -> None:
        error = outcome.error.type if outcome.error is not None else None
        self.events.append(("attempt", info.step_key, info.attempt, outcome.status.value, error))


class Broken:
    """Raises in every hook it has."""

    def on_invocation_start(self, *_: object) -> None:
        raise RuntimeError("plugin bug")

    def on_step_end(self, *_: object) -> None:
        raise RuntimeError("plugin bug")


@pytest.fixture(autouse=True)
def _no_plugins_left_behind() -> Iterator[None]:
    yield
    for plugin in plugins.registered():
        plugins.unregister(plugin)


EXPECTED = [
    ("invocation_start", 1, True),
    ("step_start", "flaky#0", "", 1),
    ("attempt", "flaky#0", 1, "retrying", "ValueError"),
    ("step_end", "flaky#0", "retrying"),
    ("invocation_end", "suspended", True),
    ("invocation_start", 1, False),
    ("step_start", "flaky#0", "", 2),
    ("attempt", "flaky#0", 2, "succeeded", None),
    ("step_end", "flaky#0", "succeeded"),
    ("step_start", "after#0", "", 1),
    ("attempt", "after#0", 1, "succeeded", None),
    ("step_end", "after#0", "succeeded"),
    ("invocation_end", "succeeded", False),
]


def flaky_task(registry, task_id: str):
    calls: list[int] = []

    @step(retry=RetryPolicy(max_attempts=3, randomize=False))
    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise ValueError("first attempt fails")
        return n

    @step
    def after(n: int) -> int:
        return n + 1

    @task(id=task_id, registry=registry)
    async def run(payload: int) -> int:
        return await after(await flaky(payload))

    return run


def test_two_plugins_both_see_every_invocation_step_and_attempt_event(registry, runner):
    first, second = plugins.register(Recorder()), plugins.register(Recorder())
    result = runner.run(flaky_task(registry, "plugins-two"), 1)
    assert result.output == 2
    assert first.events == EXPECTED
    assert second.events == EXPECTED


def test_a_failing_plugin_is_isolated_from_the_run_and_from_other_plugins(registry, runner, caplog):
    plugins.register(Broken())
    recorder = plugins.register(Recorder())
    with caplog.at_level(logging.WARNING, logger="durable-lambda"):
        result = runner.run(flaky_task(registry, "plugins-broken"), 1)
    assert result.status is RunStatus.COMPLETED
    assert recorder.events == EXPECTED
    failures = [(r.hook, r.error) for r in caplog.records if r.msg == "plugin hook failed"]
    # Two invocations, each: one invocation start, two step ends (flaky's second run, after).
    assert sorted(failures) == sorted(
        [("on_invocation_start", "RuntimeError")] * 2 + [("on_step_end", "RuntimeError")] * 3
    )


def test_an_unregistered_plugin_hears_nothing_more(registry, runner):
    recorder = plugins.register(Recorder())
    plugins.unregister(recorder)
    runner.run(flaky_task(registry, "plugins-gone"), 1)
    assert recorder.events == []
