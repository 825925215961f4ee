"""Fixtures: emulated stacks running ``queue_tasks``, each with its own ledger file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger import LEDGER_ENV

from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings

HERE = Path(__file__).parent
SUPPORT = HERE.parent / "support"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The ledger file the step bodies append to."""
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def make_stack(tmp_path: Path, ledger: Path) -> Iterator[Callable[..., EmulatedStack]]:
    """``make_stack(settings, timeout=.., ...)``: a started stack running ``queue_tasks``.

    Every stack is stopped at the end of the test. Each gets a table, bucket and
    queues of its own (moto servers in one process share their state).
    """
    stacks: list[EmulatedStack] = []

    def make(
        settings: Settings | None = None,
        *,
        task_modules: tuple[str, ...] = ("queue_tasks",),
        **options: Any,
    ) -> EmulatedStack:
        options.setdefault("log_dir", tmp_path / f"stack-{len(stacks)}")
        name = f"dl-q-{uuid.uuid4().hex[:8]}"
        stack = EmulatedStack(
            (settings or Settings()).with_(table_name=name, bucket_name=name),
            task_modules=list(task_modules),
            pythonpath=[str(HERE), str(SUPPORT)],
            env={LEDGER_ENV: str(ledger)},
            **options,
        )
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()
