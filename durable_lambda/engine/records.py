"""Stored records: a run's metadata, checkpoints, timeline events, timers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from durable_lambda.engine.journal import ErrorInfo, JournalEntry
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's metadata (the ``RUN#id / META`` item).

    Attributes:
        run_id: The run's id.
        task_id: The task it runs.
        status: Where it is.
        payload: The validated payload, as JSON text.
        created_at: When it was triggered.
        updated_at: When its metadata last changed.
        attempt: Task-level attempt, from 1.
        epoch: Generation of resume messages: a message may take the run only
            while its epoch equals this; every suspension increments it.
        lease_owner: The invocation holding the run, if any.
        lease_expiry: When that hold ends even if the holder never says so.
        wake_at: Earliest time the run may be taken again.
        queue: Its queue's name.
        concurrency_key: Its concurrency key, if any.
        priority: Higher runs first within a queue.
        tags: Free-form labels.
        idempotency_key: The trigger's idempotency key, if any.
        output: The output (JSON text) once completed.
        error: The error once failed.
        invocations: Invocations that took the run (the hop count).
        started_at: When the task body first ran (after rate limit and slot admission).
        admitted_at: When a run not yet started passed its queue's rate limit and
            was then parked: that start is counted once, not again at its grant.
        finished_at: When it reached a terminal status.
        expires_at: A run not started by then ends EXPIRED (the trigger's ``ttl``).
        last_delivery_error: Why the last resume message could not be processed.
        metadata: What the task published with ``ctx.metadata`` (readable while it runs).
        metadata_marks: Internal: per scope, the metadata calls and log lines the
            task body already made, so a replay does not make them twice.
        parent_run_id: The run that triggered this one from inside its task, if any.
        root_run_id: The first run of that chain of parents (``None``: this is a root).
        depth: How many parents are above this run (0 for a run triggered from outside).
        batched: Triggered with siblings by one call of its parent, which keeps a
            count of their ends while it waits on them: the run counts its own
            end on the parent and sends a nudge only when that count may end
            the wait, instead of a nudge per child just to be counted.
        waiting_children: Suspended on something outside that nudges it: its
            children ending, a wait token resolved. A nudge (a message of
            :data:`ANY_EPOCH`) may take it before its ``wake_at``.
        awaited_children: While suspended on its children, those still running
            that it waits on; each child's end is taken out once.
        awaited_wake: While ``awaited_children`` is in force, a nudge takes the
            run only once at most this many are left (no wait can end sooner);
            ``None``: any nudge may take it.
        replay_of: The run this one replays (``runs.replay``), if any.


        cancel_requested: A cancel arrived while an invocation held the run:
            its fenced writes are refused from then on, except the checkpoint
            that ends it CANCELED (at its next step boundary).
    """

    run_id: str
    task_id: str
    status: RunStatus
    payload: str
    created_at: dt.datetime
    updated_at: dt.datetime
    attempt: int = 1
    epoch: int = 0
    lease_owner: str | None = None
    lease_expiry: dt.datetime | None = None
    wake_at: dt.datetime | None = None
    queue: str = ""
    concurrency_key: str | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()
    idempotency_key: str | None = None
    output: str | None = None
    error: ErrorInfo | None = None
    invocations: int = 0
    started_at: dt.datetime | None = None
    admitted_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    last_delivery_error: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    metadata_marks: Mapping[str, int] = field(default_factory=dict)
    parent_run_id: str | None = None
    root_run_id: str | None = None
    depth: int = 0
    batched: bool = False
    waiting_children: bool = False
    awaited_children: frozenset[str] = frozenset()
    awaited_wake: int | None = None
    replay_of: str | None = None

    cancel_requested: bool = False


#: The error type a canceled run records (what a parent's ``RunResult`` shows).
CANCELED_ERROR = "RunCanceled"

#: The epoch of a child's nudge to its parent: it takes the parent at whatever
#: epoch the parent is, but only while the parent is suspended on its children.
ANY_EPOCH = -1


@dataclass(frozen=True, slots=True)
class Fence:
    """Proof of holding a run: its owner id and the epoch it was taken at."""

    owner: str
    epoch: int


class EventKind(StrEnum):
    """Timeline events that are not journal entries."""

    TRIGGERED = "triggered"
    INVOCATION_STARTED = "invocation_started"
    SUSPENDED = "suspended"
    STEP_RETRY_SCHEDULED = "step_retry_scheduled"
    RUN_RETRY_SCHEDULED = "run_retry_scheduled"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    PARKED = "parked"
    EXPIRED = "expired"
    RATE_LIMITED = "rate_limited"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of a run's timeline.

    Attributes:
        at: When it happened.
        kind: What happened.
        detail: Free-form detail, kept short (never a payload).
        delay: For scheduled retries and suspensions, the delay in seconds.
    """

    at: dt.datetime
    kind: EventKind
    detail: str = ""
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class Park:
    """Park the run for a unit of a full counter, atomically with its checkpoint.

    The write succeeds only while the counter is still full (or paused), so a
    unit released in between can never be missed: the store then raises
    ``SlotAvailableError`` and the worker acquires again.

    Attributes:
        key: The counter.
        priority: Higher is handed a unit first.
        enqueued_at: FIFO order among equal priorities.
        code_limit: The limit declared in code.
        expires_at: The run's ttl: a timer is indexed for it with the park, so
            the run expires while parked even if no unit ever comes.
    """

    key: SlotKey
    priority: int
    enqueued_at: dt.datetime
    code_limit: int | None
    expires_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What an invocation writes when it stops, in one fenced write.

    Attributes:
        status: The run's new status.
        wake_at: For SUSPENDED: when it may resume (``None``: now).
        new_epoch: Whether to increment the epoch (any status a message will resume).
        entries: Journal entries to write with it.
        events: Timeline events to write with it.
        output: Output JSON text for COMPLETED.
        error: The error for FAILED (or the failed attempt for a run retry).
        attempt: The run's new attempt number, if it changes.
        timer: Also index the wake time for the scheduler (beyond SQS's delay).
        park: Park the run for a concurrency unit (status WAITING_FOR_SLOT).
        started_at: Record the run's first start (once admitted), if not yet set.
        admitted_at: Record that the run passed its rate limit (with its park).
        release: Give back the run's unit of this counter in the same write. It
            folds in only while the run holds a unit and nobody is parked on the
            counter; otherwise the store writes nothing and raises
            ``ReleaseNotFoldedError`` (checkpoint, then release and hand off).
        metadata: The run's metadata document (``engine/metadata.py``) to store,
            if the invocation changed it.
        waiting_children: The run suspends on something outside that nudges
            it (children ending, a token resolved) before ``wake_at``.
        awaited_children: The running children it waits on (see :class:`RunRecord`).
        awaited_wake: Their count at which a nudge may take it (``None``: any nudge).
    """

    status: RunStatus
    wake_at: dt.datetime | None = None
    new_epoch: bool = False
    entries: tuple[JournalEntry, ...] = ()
    events: tuple[TimelineEvent, ...] = ()
    output: str | None = None
    error: ErrorInfo | None = None
    attempt: int | None = None
    timer: bool = False
    park: Park | None = None
    started_at: dt.datetime | None = None
    admitted_at: dt.datetime | None = None
    release: SlotKey | None = None
    metadata: str | None = None
    waiting_children: bool = False
    awaited_children: frozenset[str] = frozenset()
    awaited_wake: int | None = None


class CancelAction(StrEnum):
    """What a cancel from outside does to a run, as it stands (``transitions.cancel_action``)."""

    FINISHED = "finished"  # it has ended already: nothing changes
    NOW = "now"  # nobody executes it (waiting, parked, delayed, queued): CANCELED at once
    REQUEST = "request"  # a live invocation holds it: flagged; that invocation ends it


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What :meth:`RunStore.cancel_run` did.

    Attributes:
        action: NOW (the run is CANCELED) or REQUEST (flagged; its holder ends it).
        run: The run as it now stands.
        previous: The status it had before the cancel.
    """

    action: CancelAction
    run: RunRecord
    previous: RunStatus


class LeaseOutcome(StrEnum):
    """How an attempt to take a run's lease ended."""

    TAKEN = "taken"  # this invocation now holds the run
    NOT_FOUND = "not_found"  # no such run
    STALE = "stale"  # the message's epoch has passed or the run is finished: drop it
    BUSY = "busy"  # a live invocation holds the run: try the message later
    EARLY = "early"  # the run's wake time has not come: resend for later


@dataclass(frozen=True, slots=True)
class LeaseResult:
    """The result of :meth:`RunStore.take_lease`; ``run`` is the record as it now stands."""

    outcome: LeaseOutcome
    run: RunRecord | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """A wake-up beyond SQS's 15-minute delay, indexed for the scheduler."""

    run_id: str
    epoch: int
    wake_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ResumeMessage:
    """The body of a resume message: only the run and the epoch, never a payload.

    A child's nudge to its parent carries :data:`ANY_EPOCH` and the child's run
    id, so the parent counts each child's end once.
    """

    run_id: str
    epoch: int
    child: str | None = None


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters for listing runs, newest first (by creation time, then run id).

    Attributes:
        task_id: Only runs of this task.
        status: Only runs in this status.
        limit: At most this many runs.
        tag: Only runs carrying this tag.
        created_from: Only runs created at or after this time.
        created_to: Only runs created at or before this time.
        before: Only runs strictly older than this ``(created_at, run_id)``
            position: the last run of the previous page.
    """

    task_id: str | None = None
    status: RunStatus | None = None
    limit: int = 50
    tag: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    before: tuple[dt.datetime, str] | None = None

    def matches(self, run: RunRecord) -> bool:
        """Whether ``run`` passes every filter (the limit aside)."""
        position = (run.created_at, run.run_id)
        return (
            (self.task_id is None or run.task_id == self.task_id)
            and (self.status is None or run.status is self.status)
            and (self.tag is None or self.tag in run.tags)
            and (self.created_from is None or run.created_at >= self.created_from)
            and (self.created_to is None or run.created_at <= self.created_to)
            and (self.before is None or position < self.before)
        )
