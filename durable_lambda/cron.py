"""Cron schedules, as pure rules: validation, due occurrences, the payload a cron run gets.

No I/O and no import of the runtime, so ``task.py`` checks a schedule at
decoration time; firing occurrences is the scheduler's job (``scheduler.CronFirer``).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel

from durable_lambda.errors import ConfigurationError

#: Occurrences fired per task per tick at most (after downtime, older ones are skipped).
MAX_CATCH_UP = 10


class ScheduledPayload(BaseModel):
    """The payload a cron task receives.

    Attributes:
        timestamp: The occurrence being fired.
        last_timestamp: The previous occurrence fired, if any.
        timezone: The schedule's timezone.
    """

    timestamp: dt.datetime
    last_timestamp: dt.datetime | None = None
    timezone: str = "UTC"


def validate_cron(expression: str, timezone: str) -> None:
    """Reject an invalid cron expression or timezone at decoration time."""
    if not croniter.is_valid(expression):
        raise ConfigurationError(f"cron expression {expression!r} is not valid")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"timezone {timezone!r} is not a known IANA zone") from None


def occurrences(
    expression: str, timezone: str, after: dt.datetime, until: dt.datetime
) -> list[dt.datetime]:
    """Occurrences in ``(after, until]``, in UTC, oldest first (the newest MAX_CATCH_UP)."""
    zone = ZoneInfo(timezone)
    it = croniter(expression, after.astimezone(zone))
    found: list[dt.datetime] = []
    while True:
        nxt: dt.datetime = it.get_next(dt.datetime)
        if nxt > until:
            break
        found.append(nxt.astimezone(dt.UTC))
    return found[-MAX_CATCH_UP:]


def previous_occurrence(expression: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """The latest occurrence at or before ``now``, in UTC."""
    it = croniter(expression, now.astimezone(ZoneInfo(timezone)))
    prev: dt.datetime = it.get_prev(dt.datetime)
    return prev.astimezone(dt.UTC)
