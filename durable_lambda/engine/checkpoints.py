"""From an invocation's outcome to the checkpoint that records it. Pure.

Every checkpoint an invocation writes at its end, terminal or not, is built
here, so the rules (which status, whether the epoch moves, when the run wakes
and whether a timer carries the wake-up) live in one place.
"""

from __future__ import annotations

import datetime as dt

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.outcome import (
    Abandoned,
    Canceled,
    Completed,
    Expired,
    Failed,
    Outcome,
    RetryRun,
    Suspended,
    SuspendReason,
)
from durable_lambda.engine.records import (
    CANCELED_ERROR,
    Checkpoint,
    EventKind,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.resume import plan
from durable_lambda.engine.state import RunStatus

#: Timeline details are kept short: they describe, they never carry payloads.
DETAIL_LIMIT = 500


def short(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checkpoint_for(
    outcome: Outcome, run: RunRecord, now: dt.datetime, *, started: TimelineEvent | None = None
) -> Checkpoint | None:
    """The checkpoint that records ``outcome`` of an invocation of ``run`` ending at ``now``.

    Args:
        outcome: What the invocation came to.
        run: The run as the invocation took it.
        now: When the invocation ends.
        started: The invocation's start event, written first on the timeline.

    Returns:
        The checkpoint, or ``None`` for :class:`Abandoned` (another invocation
        holds the run; this one writes nothing more).
    """
    head = (started,) if started is not None else ()
    if isinstance(outcome, Abandoned):
        return None
    if isinstance(outcome, Completed):
        return Checkpoint(
            status=RunStatus.COMPLETED,
            output=outcome.output,
            entries=outcome.entries,
            events=(*head, TimelineEvent(now, EventKind.COMPLETED)),
        )
    if isinstance(outcome, Failed):
        return failed_checkpoint(outcome, now, started=started)
    if isinstance(outcome, Canceled | Expired):
        return _stopped(outcome, now, started=started)
    if isinstance(outcome, RetryRun):
        wake = now + dt.timedelta(seconds=outcome.delay)
        event = TimelineEvent(
            now,
            EventKind.RUN_RETRY_SCHEDULED,
            short(f"{outcome.error.type}: {outcome.error.message} ({outcome.reason})"),
            delay=outcome.delay,
        )
        return Checkpoint(
            status=RunStatus.SUSPENDED,
            wake_at=wake,
            new_epoch=True,
            error=outcome.error,
            attempt=run.attempt + 1,
            events=(*head, event),
            timer=plan(wake, now).timer,
        )
    return _suspended(outcome, now, head)


def failed_checkpoint(
    outcome: Failed, now: dt.datetime, *, started: TimelineEvent | None = None
) -> Checkpoint:
    """The checkpoint of a run that failed for good (see :func:`checkpoint_for`)."""
    head = (started,) if started is not None else ()
    return Checkpoint(
        status=RunStatus.FAILED,
        error=outcome.error,
        entries=outcome.entries,
        events=(*head, TimelineEvent(now, EventKind.FAILED, short(outcome.reason))),
    )


def _stopped(
    outcome: Canceled | Expired, now: dt.datetime, *, started: TimelineEvent | None
) -> Checkpoint:
    """A run that ends without finishing its body: canceled, or expired before it started."""
    if isinstance(outcome, Canceled):
        return canceled_checkpoint(outcome, now, started=started)
    head = (started,) if started is not None else ()
    return Checkpoint(
        status=RunStatus.EXPIRED,
        events=(*head, TimelineEvent(now, EventKind.EXPIRED, short(outcome.detail))),
    )


def canceled_checkpoint(
    outcome: Canceled, now: dt.datetime, *, started: TimelineEvent | None = None
) -> Checkpoint:
    """The checkpoint of a run whose invocation stopped for a requested cancel.

    The epoch stays: a redelivery of the message that ended the run then
    recognises it (see the worker) and settles what the run left behind.
    """
    head = (started,) if started is not None else ()
    return Checkpoint(
        status=RunStatus.CANCELED,
        error=ErrorInfo(CANCELED_ERROR, short(outcome.detail)),
        entries=outcome.entries,
        events=(*head, TimelineEvent(now, EventKind.CANCELED, short(outcome.detail))),
    )


def _suspended(outcome: Suspended, now: dt.datetime, head: tuple[TimelineEvent, ...]) -> Checkpoint:
    resume = plan(outcome.wake_at, now)
    kind = (
        EventKind.STEP_RETRY_SCHEDULED
        if outcome.reason is SuspendReason.STEP_RETRY
        else EventKind.SUSPENDED
    )
    detail = short(f"{outcome.reason.value}: {outcome.detail}")
    return Checkpoint(
        status=RunStatus.SUSPENDED,
        wake_at=outcome.wake_at,
        new_epoch=True,
        entries=outcome.entries,
        events=(*head, TimelineEvent(now, kind, detail, delay=resume.seconds)),
        timer=resume.timer,
        waiting_children=outcome.children,
        awaited_children=outcome.awaited if outcome.children else frozenset(),
        awaited_wake=outcome.awaited_wake if outcome.children else None,
    )
