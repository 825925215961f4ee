"""What the engine tells the outside world about step attempts, as they happen. Pure.

The engine knows when a step body starts and how each attempt ends; plugins
(``durable_lambda.plugins``) want to hear it. The engine cannot import them, so
the worker passes an observer in through the ``Environment``, as it passes
``record``. Only live attempts are reported: a replayed result is not an event.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from durable_lambda.engine.journal import ErrorInfo


class AttemptStatus(StrEnum):
    """How a step attempt, or an invocation, ended (what plugins see as ``outcome.status``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # for good: no further attempt follows
    RETRYING = "retrying"  # another attempt follows after a backoff
    SUSPENDED = "suspended"  # an invocation stopped; the run continues in a later one
    CANCELED = "canceled"  # an invocation ended its run CANCELED (a cancel was requested)


class StepObserver(Protocol):
    """Hears each live step attempt of an invocation."""

    def step_started(self, key: str, scope: str, attempt: int) -> None:
        """A step body is about to run attempt ``attempt``."""
        ...

    def step_ended(
        self, key: str, scope: str, attempt: int, status: AttemptStatus, error: ErrorInfo | None
    ) -> None:
        """Attempt ``attempt`` of a step ended with ``status`` (``error`` when it failed)."""
        ...


class NoObserver:
    """The observer of an invocation nobody listens to."""

    def step_started(self, key: str, scope: str, attempt: int) -> None:
        """Ignore the start."""

    def step_ended(
        self, key: str, scope: str, attempt: int, status: AttemptStatus, error: ErrorInfo | None
    ) -> None:
        """Ignore the end."""
