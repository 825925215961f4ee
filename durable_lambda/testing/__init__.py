"""Helpers for users' own tests: :class:`LocalRunner`, :class:`SkipClock`, a request counter.

May import the engine, the services and the memory adapters; nothing outside ``testing/``
imports it.
"""

from durable_lambda.testing.clock import SkipClock
from durable_lambda.testing.runner import LocalRunner, RunnerStalledError

__all__ = ["LocalRunner", "RunnerStalledError", "SkipClock"]
