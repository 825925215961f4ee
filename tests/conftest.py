"""Shared fixtures: a fresh task registry per test so task ids never collide."""

from __future__ import annotations

import random

import pytest

from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def runner(registry: TaskRegistry) -> LocalRunner:
    return LocalRunner(registry=registry, rng=random.Random(7))
