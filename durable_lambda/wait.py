"""``wait``: pause a task for a duration or until a time, without paying for idle Lambda.

Both functions check their arguments when called, not when awaited, so a bad
duration fails at the line that wrote it even if the coroutine is never awaited.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Coroutine
from typing import Any

from durable_lambda.engine.execution import current_execution
from durable_lambda.errors import ConfigurationError

# Polling lives in a module of its own; it is part of the ``wait`` namespace.
from durable_lambda.polling import for_condition  # noqa: F401 - re-exported as wait.for_condition


def for_(
    *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
) -> Coroutine[Any, Any, None]:
    """Pause the task for the given duration; await the result.

    Short waits (up to the ``short_wait`` setting) sleep in-process; longer ones
    checkpoint the run and end the invocation, which resumes through SQS (or the
    timer index beyond SQS's 15-minute delay).

    Raises:
        ConfigurationError: The total duration is negative or not a finite
            number of seconds a ``timedelta`` can hold.
    """
    total = seconds + 60 * minutes + 3600 * hours + 86400 * days
    if math.isnan(total) or total < 0:
        raise ConfigurationError(f"wait.for_ needs a duration >= 0 seconds, got {total:g} seconds")
    try:
        duration = dt.timedelta(seconds=total)
    except OverflowError:
        raise ConfigurationError(
            f"wait.for_ needs a finite duration of at most {dt.timedelta.max.days} days, "
            f"got {total:g} seconds"
        ) from None
    return _wait_for(duration)


async def _wait_for(duration: dt.timedelta) -> None:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.for_ can only be awaited inside a running task")
    await execution.wait_until(execution.env.now() + duration)


def until(when: dt.datetime) -> Coroutine[Any, Any, None]:
    """Pause the task until ``when``; await the result.

    Raises:
        ConfigurationError: ``when`` is naive: without a timezone the instant is
            ambiguous (local time on a laptop, UTC on Lambda).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigurationError(
            f"wait.until needs a timezone-aware datetime, got naive {when.isoformat()}; "
            "pass e.g. datetime(..., tzinfo=datetime.UTC)"
        )
    return _wait_until(when)


async def _wait_until(when: dt.datetime) -> None:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.until can only be awaited inside a running task")
    await execution.wait_until(when)
