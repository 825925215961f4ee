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
    CHILDREN = "children"  # child runs are still running: a child's end nudges the run
    TOKEN = "token"  # noqa: S105 - a wait token is pending: its completion nudges the run


#: Suspensions that something outside may end early with a nudge (``ANY_EPOCH``).
NUDGEABLE = frozenset({SuspendReason.CHILDREN, SuspendReason.TOKEN})


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
    waits, retrying steps) so they cost no request of their own. ``children``:
    the run waits on something outside (child runs, a wait token) whose nudge
    may take it before ``wake_at``; ``awaited``: the child runs still running,
    and ``awaited_wake``: how few of them may be left before a child's nudge
    takes the run (no wait on children can end sooner; a token's nudge is not
    counted and takes it at once).
    """

    reason: SuspendReason
    wake_at: dt.datetime | None
    entries: tuple[JournalEntry, ...] = ()
    detail: str = ""
    children: bool = False
    awaited: frozenset[str] = frozenset()
    awaited_wake: int | None = None


@dataclass(frozen=True, slots=True)
class RetryRun:
    """The task body raised; the whole run is tried again after ``delay`` seconds."""

    error: ErrorInfo
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Expired:
    """The run was not started before its ``ttl``: it ends EXPIRED without running."""

    detail: str


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Another invocation took the run over; this one stops and writes nothing more."""

    reason: str


@dataclass(frozen=True, slots=True)
class Canceled:
    """A cancel was requested: the run ends CANCELED at this step boundary.

    ``entries`` are the calls this invocation finished whose records the
    cancel refused: they are written with the CANCELED checkpoint.
    """

    detail: str
    entries: tuple[JournalEntry, ...] = ()


Outcome = Completed | Failed | Suspended | RetryRun | Expired | Abandoned | Canceled


class Action(StrEnum):
    """What the worker did with one resume message."""

    EXECUTED = "executed"  # took the run and ran an invocation of it
    EXPIRED = "expired"  # took the run and ended it EXPIRED (its ttl passed before it started)
    STALE = "stale"  # the message's epoch has passed or the run is finished: dropped
    BUSY = "busy"  # a live invocation holds the run: re-sent for when its lease expires
    EARLY = "early"  # the run's wake time has not come: re-sent for then (or left to its timer)
    DEFERRED = "deferred"  # too little time left in this invocation: re-sent to a fresh one
    ABANDONED = "abandoned"  # another invocation took the run over mid-way: wrote nothing more
    PARKED = "parked"  # no concurrency unit: parked until a release hands one on
    RATE_LIMITED = "rate_limited"  # over the queue's rate limit: delayed
    CANCELED = "canceled"  # a cancel was requested: the run ended CANCELED
    KILLED = "killed"  # (LocalRunner) the invocation ran past its deadline
