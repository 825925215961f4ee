"""Concurrency slots and rate windows: the maths, no I/O. Pure.

A queue's concurrency is a counter that knows its holders: each holder is a
run with a lease expiry, so a killed holder's unit can be reclaimed once its
expiry has passed, and a duplicate acquire or release changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from durable_lambda.errors import ConfigurationError

#: Priorities run from MIN_PRIORITY to MAX_PRIORITY; higher starts first.
MAX_PRIORITY = 1_000_000
MIN_PRIORITY = -1_000_000


@dataclass(frozen=True, slots=True)
class SlotKey:
    """One concurrency counter: a queue, or one concurrency key on it."""

    queue: str
    concurrency_key: str | None = None

    @property
    def id(self) -> str:
        """``queue`` or ``queue#key``."""
        return (
            self.queue if self.concurrency_key is None else f"{self.queue}#{self.concurrency_key}"
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """A run holding one unit of a counter until ``expiry``."""

    run_id: str
    expiry: dt.datetime


@dataclass(frozen=True, slots=True)
class QueueState:
    """A counter as stored.

    Attributes:
        key: Which counter.
        holders: The runs holding a unit (``count == len(holders)`` always).
        waiting: Runs parked for a unit.
        paused: A paused queue starts nothing.
        limit_override: A runtime override of the code's limit.
        code_limit: The limit declared in code, as last seen by an acquirer.
    """

    key: SlotKey
    holders: tuple[Holder, ...] = ()
    waiting: int = 0
    paused: bool = False
    limit_override: int | None = None
    code_limit: int | None = None

    @property
    def count(self) -> int:
        """Units held."""
        return len(self.holders)

    @property
    def limit(self) -> int | None:
        """The limit in force: the override, else the code's; ``None`` is unlimited."""
        return self.limit_override if self.limit_override is not None else self.code_limit

    @property
    def has_room(self) -> bool:
        """Whether one more unit may be taken now."""
        return not self.paused and (self.limit is None or self.count < self.limit)

    def holds(self, run_id: str) -> bool:
        """Whether ``run_id`` holds a unit."""
        return any(h.run_id == run_id for h in self.holders)

    def expired(self, now: dt.datetime) -> list[Holder]:
        """Holders whose expiry has passed: their run's invocation is gone."""
        return [h for h in self.holders if h.expiry <= now]


class AcquireOutcome(StrEnum):
    """How an acquire ended."""

    ACQUIRED = "acquired"  # a new unit is held
    HELD = "held"  # the run already held one (granted, or kept across a deadline hop)
    FULL = "full"  # no room, or runs are already parked ahead
    PAUSED = "paused"  # the queue is paused


@dataclass(frozen=True, slots=True)
class AcquireResult:
    """The outcome and the counter as it stood."""

    outcome: AcquireOutcome
    state: QueueState

    @property
    def holds(self) -> bool:
        """True when the run may execute."""
        return self.outcome in {AcquireOutcome.ACQUIRED, AcquireOutcome.HELD}


def validate_priority(priority: int) -> int:
    """Check the range so the waiter order stays a fixed-width string."""
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be in [{MIN_PRIORITY}, {MAX_PRIORITY}], got {priority}")
    return priority


def validate_limit_override(limit_override: int | None) -> None:
    """A runtime override may close a queue (0) but never go negative."""
    if limit_override is not None and limit_override < 0:
        raise ConfigurationError(f"limit_override must be >= 0, got {limit_override}")


def waiter_order(priority: int, enqueued_at: dt.datetime, run_id: str) -> str:
    """A sort key: higher priority first, then older first, then run id."""
    inverted = MAX_PRIORITY - validate_priority(priority)
    stamp = enqueued_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{inverted:08d}#{stamp}#{run_id}"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a start is admitted, the window to store, and the wait otherwise."""

    admitted: bool
    starts: tuple[float, ...]
    retry_in: float


def rate_decision(starts: Sequence[float], limit: int, period: float, now: float) -> RateDecision:
    """Sliding-window log: admit when fewer than ``limit`` starts fell in the last ``period``.

    ``starts`` and ``now`` are epoch seconds. Unlike fixed windows, no burst of
    ``2 * limit`` can straddle a window boundary: any ``period``-long interval
    holds at most ``limit`` admitted starts.
    """
    recent = sorted(t for t in starts if t > now - period)
    if len(recent) < limit:
        return RateDecision(True, (*recent, now), 0.0)
    oldest_blocking = recent[len(recent) - limit]
    return RateDecision(False, tuple(recent), max(0.0, oldest_blocking + period - now))
