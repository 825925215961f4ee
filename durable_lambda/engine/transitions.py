"""How a run moves: which message may take it, what a checkpoint leaves, who may fail it. Pure.

Every store applies these rules (the memory store by calling them, the
DynamoDB store by calling them on what it read and by mirroring them in its
condition expressions), so they are written once, here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.metadata import decode_doc
from durable_lambda.engine.records import (
    ANY_EPOCH,
    CANCELED_ERROR,
    CancelAction,
    Checkpoint,
    EventKind,
    LeaseOutcome,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.state import RESUMABLE, RunStatus


def lease_outcome(
    run: RunRecord, epoch: int, now: dt.datetime, *, counted: bool = False
) -> LeaseOutcome:
    """Whether a message of ``epoch`` may take ``run`` at ``now``.

    A child's nudge (``ANY_EPOCH``) takes a run suspended on its children at
    its current epoch, whatever its fallback wake time; it is BUSY while a
    live invocation holds the run (the parent may not have checkpointed its
    suspension yet: the nudge is re-sent shortly) and STALE otherwise
    (finished, resuming by its own message, or held by a dead invocation whose
    recovery replays it: each of those reads the children anyway). A child's
    nudge that is ``counted`` (it names its child) is STALE while the run keeps
    a count of its awaited children: the child's end must be counted first
    (:func:`child_ended`), and only a count that says so takes the run.
    """
    if epoch == ANY_EPOCH:
        return _nudge_outcome(run, now, counted=counted)
    if run.status.is_terminal or run.epoch != epoch:
        return LeaseOutcome.STALE
    if run.status is RunStatus.RUNNING:
        live = run.lease_expiry is not None and run.lease_expiry > now
        return LeaseOutcome.BUSY if live else LeaseOutcome.TAKEN
    if run.status not in RESUMABLE:
        return LeaseOutcome.STALE
    if run.wake_at is not None and run.wake_at > now:
        return LeaseOutcome.EARLY
    return LeaseOutcome.TAKEN


def _nudge_outcome(run: RunRecord, now: dt.datetime, *, counted: bool) -> LeaseOutcome:
    if run.status is RunStatus.RUNNING:
        live = run.lease_expiry is not None and run.lease_expiry > now
        return LeaseOutcome.BUSY if live else LeaseOutcome.STALE
    if run.status is RunStatus.SUSPENDED and run.waiting_children:
        counting = counted and run.awaited_wake is not None
        return LeaseOutcome.STALE if counting else LeaseOutcome.TAKEN
    return LeaseOutcome.STALE


def child_ended(run: RunRecord, child_id: str) -> tuple[RunRecord, bool]:
    """``run`` with ``child_id``'s end counted, and whether its nudge may take ``run`` now.

    A run suspended on its children keeps the set of those still running it
    waits on; each child's end takes it out once (a duplicate nudge finds it
    gone and counts nothing), and only once so few are left that a wait may
    have ended does a nudge take the run, which then reads its children. With
    no set in force, a nudge tries whenever the lease rules could let one take
    the run: it is running (it may be about to suspend on its children; the
    nudge is re-sent until it has) or suspended on what nudges it. A finished
    run, or one waiting on a timer or a retry, only makes a nudge STALE.
    """
    if run.awaited_wake is None:
        running = run.status is RunStatus.RUNNING
        return run, running or (run.status is RunStatus.SUSPENDED and run.waiting_children)
    remaining = run.awaited_children - {child_id}
    return replace(run, awaited_children=remaining), len(remaining) <= run.awaited_wake


def failable(run: RunRecord, epoch: int, now: dt.datetime) -> bool:
    """Whether a failed message of ``epoch`` may fail ``run`` from outside.

    A message of an older epoch says nothing about the run now, and a run held
    by a live invocation is making progress whatever happened to a duplicate.
    """
    if run.status.is_terminal or run.epoch != epoch:
        return False
    live = run.lease_expiry is not None and run.lease_expiry > now
    return not (run.status is RunStatus.RUNNING and live)


def cancel_action(run: RunRecord, now: dt.datetime) -> CancelAction:
    """How a cancel at ``now`` treats ``run``.

    A run RUNNING under an expired lease has no live holder (it died): it is
    canceled at once, and the write's fence on the epoch and owner read keeps
    a recovery that takes it meanwhile from racing the cancel.
    """
    if run.status.is_terminal:
        return CancelAction.FINISHED
    live = run.lease_expiry is not None and run.lease_expiry > now
    if run.status is RunStatus.RUNNING and live:
        return CancelAction.REQUEST
    return CancelAction.NOW


def canceled(run: RunRecord, at: dt.datetime, detail: str) -> RunRecord:
    """``run`` canceled from outside at ``at``: its epoch moves, so no message takes it again."""
    return replace(
        run,
        status=RunStatus.CANCELED,
        epoch=run.epoch + 1,
        lease_owner=None,
        lease_expiry=None,
        wake_at=None,
        updated_at=at,
        finished_at=at,
        error=ErrorInfo(CANCELED_ERROR, detail),
        waiting_children=False,
        awaited_children=frozenset(),
        awaited_wake=None,
        cancel_requested=False,
    )


def cancel_event(action: CancelAction, at: dt.datetime, detail: str) -> TimelineEvent:
    """The timeline event a cancel from outside writes with its ``action``."""
    kind = EventKind.CANCELED if action is CancelAction.NOW else EventKind.CANCEL_REQUESTED
    return TimelineEvent(at, kind, detail)


def apply_checkpoint(run: RunRecord, checkpoint: Checkpoint) -> RunRecord:
    """``run`` as ``checkpoint`` leaves it.

    The lease is released unless the run stays RUNNING; ``updated_at`` (and
    ``finished_at`` for a terminal status) is the time of the checkpoint's last
    event; error, attempt and output change only when the checkpoint sets them.
    """
    running = checkpoint.status is RunStatus.RUNNING
    at = max((e.at for e in checkpoint.events), default=run.updated_at)
    if checkpoint.metadata is not None:
        run = with_metadata(run, checkpoint.metadata)
    return replace(
        run,
        status=checkpoint.status,
        epoch=run.epoch + 1 if checkpoint.new_epoch else run.epoch,
        lease_owner=run.lease_owner if running else None,
        lease_expiry=run.lease_expiry if running else None,
        wake_at=checkpoint.wake_at,
        error=checkpoint.error if checkpoint.error is not None else run.error,
        attempt=checkpoint.attempt or run.attempt,
        output=checkpoint.output if checkpoint.output is not None else run.output,
        updated_at=at,
        started_at=run.started_at or checkpoint.started_at,
        admitted_at=run.admitted_at or checkpoint.admitted_at,
        finished_at=at if checkpoint.status.is_terminal else None,
        waiting_children=checkpoint.waiting_children,
        awaited_children=checkpoint.awaited_children,
        awaited_wake=checkpoint.awaited_wake,
        cancel_requested=run.cancel_requested and not checkpoint.status.is_terminal,
    )


def with_metadata(run: RunRecord, document: str) -> RunRecord:
    """``run`` carrying the metadata ``document`` (``engine/metadata.py``)."""
    values, marks = decode_doc(document)
    return replace(run, metadata=values, metadata_marks=marks)
