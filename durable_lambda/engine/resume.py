"""When and how a run comes back: the one resume planner. Pure.

A run that should resume at ``wake_at`` either gets a resume message now,
delayed by SQS up to its 15-minute maximum, or, further out, a timer item
that the scheduler turns into a message once the wake time is within reach.
Every place that schedules a run asks :func:`plan`, so that rule lives here
only.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

#: SQS's longest DelaySeconds; later wake-ups go through the timer index.
MAX_DELAY_SECONDS = 900


def delay_until(wake_at: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds from ``now`` until ``wake_at`` (0 when due, or when ``None``)."""
    if wake_at is None:
        return 0.0
    return max(0.0, (wake_at - now).total_seconds())


def sqs_delay(seconds: float) -> int:
    """``seconds`` as SQS DelaySeconds: whole seconds, rounded up (never early), capped."""
    return min(MAX_DELAY_SECONDS, math.ceil(max(0.0, seconds)))


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """How a run resumes at its wake time.

    Attributes:
        seconds: Seconds from now until the wake time (0 when due).
        timer: The wake time is beyond SQS's delay: index a timer and send nothing.
    """

    seconds: float
    timer: bool

    @property
    def delay_seconds(self) -> int:
        """The SQS ``DelaySeconds`` of the message, when one is sent (never early, capped)."""
        return sqs_delay(self.seconds)


def plan(wake_at: dt.datetime | None, now: dt.datetime) -> ResumePlan:
    """How a run that wakes at ``wake_at`` (``None``: now) resumes, seen at ``now``."""
    seconds = delay_until(wake_at, now)
    return ResumePlan(seconds=seconds, timer=seconds > MAX_DELAY_SECONDS)


def plan_in(seconds: float) -> ResumePlan:
    """How a run that wakes ``seconds`` from now resumes."""
    seconds = max(0.0, seconds)
    return ResumePlan(seconds=seconds, timer=seconds > MAX_DELAY_SECONDS)
