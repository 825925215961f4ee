"""Shared fixtures: a fresh task registry per test so task ids never collide, no shared client."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_lambda import plugins
from durable_lambda.services import reset_default_client
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

# Helpers shared by the emulator suites, and importable by the task modules the
# emulated workers load (their stacks put this folder on the workers' path too).
sys.path.insert(0, str(Path(__file__).parent / "support"))

#: The fixtures the system suites share (ledger, stacks, moto server, in-process services).
pytest_plugins = ["system_fixtures"]


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def runner(registry: TaskRegistry) -> LocalRunner:
    return LocalRunner(registry=registry, rng=random.Random(7))


@pytest.fixture(autouse=True)
def _no_default_client_between_tests() -> Iterator[None]:
    """``Task.trigger``'s memoised client is built per test, never on another test's AWS."""
    reset_default_client()
    yield
    reset_default_client()


@pytest.fixture(autouse=True)
def _no_plugin_outlives_its_test() -> Iterator[None]:
    """A plugin a test registered (the handlers register the metrics one) hears no later test."""
    before = plugins.registered()
    yield
    for plugin in plugins.registered():
        if not any(plugin is kept for kept in before):
            plugins.unregister(plugin)
