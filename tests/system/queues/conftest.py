"""The queue suite runs ``queue_tasks`` (fixtures: ``tests/support/system_fixtures.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from system_fixtures import StackTasks


@pytest.fixture
def stack_tasks() -> StackTasks:
    return StackTasks(("queue_tasks",), Path(__file__).parent)
