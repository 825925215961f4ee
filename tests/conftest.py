"""Shared fixtures: a fresh task registry per test so task ids never collide."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

# Helpers shared by the emulator suites, and importable by the task modules the
# emulated workers load (their stacks put this folder on the workers' path too).
sys.path.insert(0, str(Path(__file__).parent / "support"))


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def runner(registry: TaskRegistry) -> LocalRunner:
    return LocalRunner(registry=registry, rng=random.Random(7))
