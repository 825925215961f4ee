"""A suspension's outcome from the requests an invocation's scopes made. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from durable_lambda.engine.children import awaited_count
from durable_lambda.engine.journal import JournalEntry
from durable_lambda.engine.outcome import NUDGEABLE, Suspended, SuspendReason


@dataclass(slots=True)
class SuspendRequest:
    """One scope's reason to stop: why, until when (``None``: continue at once), and detail."""

    reason: SuspendReason
    wake_at: dt.datetime | None
    detail: str
    scope: str = ""
    #: For a wait on children: those still running (all must end for it to go on).
    children: frozenset[str] = frozenset()


def suspended(requests: Sequence[SuspendRequest], pending: tuple[JournalEntry, ...]) -> Suspended:
    """The invocation's suspension: the earliest wake of all requests, continuing first."""
    requests = list(requests) or [SuspendRequest(SuspendReason.DEADLINE, None, "")]
    now_first = [r for r in requests if r.wake_at is None]
    chosen = now_first[0] if now_first else min(requests, key=_wake_key)
    waits = [r.children for r in requests if r.reason is SuspendReason.CHILDREN]
    awaited, awaited_wake = awaited_count(waits)
    return Suspended(
        reason=chosen.reason,
        wake_at=chosen.wake_at,
        entries=pending,
        detail=chosen.detail,
        # A run that continues at once reads its children (tokens) then; a
        # later wake may be brought forward by a child's (completer's) nudge.
        children=not now_first and any(r.reason in NUDGEABLE for r in requests),
        awaited=awaited,
        awaited_wake=awaited_wake,
    )


def _wake_key(request: SuspendRequest) -> dt.datetime:
    return request.wake_at or dt.datetime.min.replace(tzinfo=dt.UTC)
