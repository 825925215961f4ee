"""Cron schedules: which occurrences are due, and firing each exactly once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel

from durable_lambda.errors import ConfigurationError

if TYPE_CHECKING:
    from durable_lambda.client import Client
    from durable_lambda.ports import Clock, ScheduleStore
    from durable_lambda.task import Task, TaskRegistry

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


@dataclass(slots=True)
class CronFirer:
    """Fires due occurrences of every cron task, each exactly once.

    Two schedulers ticking at once both trigger an occurrence with the same
    idempotency key, so only one run exists; the cursor only moves forward.
    """

    registry: TaskRegistry
    schedules: ScheduleStore
    client: Client
    clock: Clock

    def fire(self) -> int:
        """Trigger every due occurrence; returns how many runs were created."""
        now = self.clock.now()
        created = 0
        for task in self.registry.tasks():
            if task.cron is not None:
                created += self._fire_task(task, task.cron, now)
        return created

    def _fire_task(self, task: Task[Any, Any], expression: str, now: dt.datetime) -> int:
        last = self.schedules.last_fired(task.id)
        if last is None:
            # First sight of this schedule: start from the latest past
            # occurrence without firing it (no backfill at deploy time).
            first = previous_occurrence(expression, task.timezone, now)
            self.schedules.mark_fired(task.id, None, first)
            return 0
        created = 0
        previous = last
        for when in occurrences(expression, task.timezone, last, now):
            payload = {
                "timestamp": when.isoformat(),
                "last_timestamp": previous.isoformat(),
                "timezone": task.timezone,
            }
            handle = self.client.trigger(
                task, payload, idempotency_key=f"cron:{task.id}:{when.isoformat()}"
            )
            created += 0 if handle.cached else 1
            if not self.schedules.mark_fired(task.id, previous, when):
                break  # another scheduler moved the cursor: it fires the rest
            previous = when
        return created
