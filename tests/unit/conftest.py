"""Fixtures the unit tier shares."""

from __future__ import annotations

import pytest

from durable_lambda import Queue, Task, TaskContext, step, task
from durable_lambda.task import TaskRegistry


@pytest.fixture
def one_slot(registry: TaskRegistry) -> Task[str, str]:
    """Task ``q1`` on a queue of limit 1: returns its payload, or 5,000 bytes for ``"big"``."""

    @step
    def work(label: str) -> str:
        return label

    @task(id="q1", registry=registry, queue=Queue("single", concurrency_limit=1))
    async def limited(payload: str, ctx: TaskContext) -> str:
        if payload == "big":
            return "x" * 5000  # above a small max_value_bytes: the output cannot be stored
        return await work(payload)

    return limited
