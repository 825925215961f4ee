"""What the worker is handed and what it reports: one Lambda invocation, one message's outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from durable_lambda.engine.journal import JournalEntry
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.state import RunStatus

__all__ = ["Invocation", "Report", "entry_bytes", "seconds_after"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """The Lambda invocation as the worker needs it.

    Attributes:
        request_id: Lambda's request id.
        remaining: Seconds left before Lambda kills the invocation.
        timeout: The function's configured timeout in seconds.
    """

    request_id: str
    remaining: Callable[[], float]
    timeout: float


@dataclass(frozen=True, slots=True)
class Report:
    """What one message did, for logs, metrics and tests."""

    run_id: str
    action: Action
    status: RunStatus | None = None
    steps_executed: int = 0
    steps_replayed: int = 0
    detail: str = ""
    task_id: str | None = None
    hops: int = 0
    error_type: str | None = None


def seconds_after(moment: dt.datetime | None, now: dt.datetime) -> float | None:
    """Seconds from ``moment`` to ``now`` (0 when ``now`` is earlier; ``None`` without one)."""
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def entry_bytes(entry: JournalEntry) -> int:
    """The bytes of what a journal entry holds: its result, or its error's type and message."""
    size = len(entry.result.encode()) if entry.result is not None else 0
    if entry.error is not None:
        size += len(entry.error.type.encode()) + len(entry.error.message.encode())
    return size
