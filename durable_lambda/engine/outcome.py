"""The outcome of one invocation of a run. Pure data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from durable_lambda.engine.journal import ErrorInfo, JournalEntry


class SuspendReason(StrEnum):
    """Why an invocation stopped before the run ended."""

    WAIT = "wait"  # wait.for_ / wait.until
    STEP_RETRY = "step_retry"  # a step failed an attempt; it runs again after a backoff
    DEADLINE = "deadline"  # the Lambda deadline is near: continue in a new invocation now


@dataclass(frozen=True, slots=True)
class Completed:
    """The task returned. ``output`` is the encoded (JSON text) return value.

    ``entries`` are journal entries to persist with the final checkpoint
    (waits that replay found elapsed).
    """

    output: str
    entries: tuple[JournalEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    """The run failed for good: a terminal error, or its last attempt failed."""

    error: ErrorInfo
    reason: str
    entries: tuple[JournalEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Suspended:
    """The invocation stopped; the run resumes at ``wake_at`` (``None``: at once).

    ``entries`` are journal entries to persist with the checkpoint (pending
    waits, retrying steps) so they cost no request of their own.
    """

    reason: SuspendReason
    wake_at: dt.datetime | None
    entries: tuple[JournalEntry, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RetryRun:
    """The task body raised; the whole run is tried again after ``delay`` seconds."""

    error: ErrorInfo
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Another invocation took the run over; this one stops and writes nothing more."""

    reason: str


Outcome = Completed | Failed | Suspended | RetryRun | Abandoned
