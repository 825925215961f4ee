"""Testing helpers for users' own tests: :class:`LocalRunner` and :class:`SkipClock`."""

from durable_lambda.testing.clock import SkipClock
from durable_lambda.testing.runner import LocalRunner, RunnerStalledError

__all__ = ["LocalRunner", "RunnerStalledError", "SkipClock"]
