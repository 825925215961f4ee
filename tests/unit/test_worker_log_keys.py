"""Every library log line during an invocation carries the run's task id and attempt."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from durable_lambda import plugins, step, task
from durable_lambda.observability import StepLines, logger


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    written = logging.StreamHandler(stream)
    written.setFormatter(logger.registered_formatter)
    logger.addHandler(written)
    lines = plugins.register(StepLines())
    yield stream
    plugins.unregister(lines)
    logger.removeHandler(written)


def test_lines_inside_an_invocation_carry_task_and_attempt_and_lines_after_do_not(
    registry, runner, log
):
    @step
    def work(n: int) -> int:
        logger.info("library line inside a step")
        return n

    @task(id="keyed", registry=registry)
    async def keyed(payload: int) -> int:
        return await work(payload)

    runner.run(keyed, 1)
    logger.info("after the invocation")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines}

    inside = by_message["library line inside a step"]
    assert (inside["task_id"], inside["attempt"]) == ("keyed", 1)
    assert by_message["step attempt"]["task_id"] == "keyed"
    after = by_message["after the invocation"]
    assert "task_id" not in after
    assert "attempt" not in after
