"""``wait``: pause a task for a duration or until a time, without paying for idle Lambda."""

from __future__ import annotations

import datetime as dt

from durable_lambda.engine.execution import current_execution
from durable_lambda.errors import ConfigurationError


async def for_(
    *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
) -> None:
    """Pause the task for the given duration.

    Short waits (up to the ``short_wait`` setting) sleep in-process; longer ones
    checkpoint the run and end the invocation, which resumes through SQS (or the
    timer index beyond SQS's 15-minute delay).
    """
    duration = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    if duration < dt.timedelta(0):
        raise ConfigurationError(f"wait.for_ needs a duration >= 0, got {duration}")
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.for_ can only be awaited inside a running task")
    await execution.wait_until(execution.env.now() + duration)


async def until(when: dt.datetime) -> None:
    """Pause the task until ``when`` (an aware datetime; naive means UTC)."""
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.until can only be awaited inside a running task")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    await execution.wait_until(when)
