"""The worker: one resume message in, one invocation of a run out. No AWS import.

Take the run's lease (a duplicate or stale message loses and executes
nothing), replay its journal, execute new steps, then write one fenced
checkpoint and send the next resume message (or index a timer).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from durable_lambda.admission import Admission, Admitted, Deferred, unit_of
from durable_lambda.cancels import Cancels
from durable_lambda.children import ChildLauncher
from durable_lambda.client import Client
from durable_lambda.context import TaskContext
from durable_lambda.effects import RunEffects, RunMetadata, bind, unbind
from durable_lambda.engine.checkpoints import (
    canceled_checkpoint,
    checkpoint_for,
    failed_checkpoint,
)
from durable_lambda.engine.execution import Environment, Execution
from durable_lambda.engine.history import History, KnownTokens
from durable_lambda.engine.journal import ErrorInfo, Journal, JournalEntry
from durable_lambda.engine.lease import lease_expiry, safety_margin
from durable_lambda.engine.outcome import (
    Abandoned,
    Action,
    Canceled,
    Expired,
    Failed,
    Outcome,
    Suspended,
    SuspendReason,
)
from durable_lambda.engine.records import (
    ANY_EPOCH,
    Checkpoint,
    EventKind,
    Fence,
    LeaseOutcome,
    LeaseResult,
    ResumeMessage,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.resume import delay_until, plan, plan_in
from durable_lambda.engine.retry import RandomSource
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    CancelRequestedError,
    DurableLambdaError,
    HopLimitExceeded,
    RunNotFoundError,
    TerminalError,
    UnknownTaskError,
)
from durable_lambda.ids import new_owner
from durable_lambda.invocation import Invocation, Report, entry_bytes, seconds_after
from durable_lambda.messages import send_resume
from durable_lambda.plugins import (
    EventInfo,
    PluginObserver,
    emit,
    info_of,
    outcome_of,
    run_ended,
)
from durable_lambda.ports import Clock, ResumeQueue, RunStore, TokenStore
from durable_lambda.settings import Settings
from durable_lambda.task import Task, TaskRegistry

__all__ = ["NUDGE_RETRY_SECONDS", "Invocation", "Report", "Worker"]

#: Seconds before a child's nudge that found its parent still running is tried again.
NUDGE_RETRY_SECONDS = 1


@dataclass(frozen=True, slots=True)
class _Taken:
    """A run this invocation now holds."""

    run: RunRecord
    fence: Fence
    expiry: dt.datetime
    now: dt.datetime


class Worker:
    """Processes resume messages for the tasks in ``registry``."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: ResumeQueue,
        registry: TaskRegistry,
        settings: Settings,
        clock: Clock,
        rng: RandomSource | None = None,
        admission: Admission | None = None,
        client: Client | None = None,
        tokens: TokenStore | None = None,
    ) -> None:
        """Wire the worker to its ports.

        ``admission`` enforces queue limits (``None`` admits all); ``client``
        triggers child tasks (``None``: a task that triggers one fails);
        ``tokens`` holds wait tokens (``None``: a task that creates one fails).
        """
        self.store = store
        self.queue = queue
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.admission = admission
        self.client = client
        self.tokens = tokens
        key = settings.callback_key
        # One per process when none is configured: see Settings.callback_key.
        self.callback_key = key.encode() if key else os.urandom(32)
        self.cancels = Cancels(
            store=store, queue=queue, clock=clock, admission=admission, tokens=tokens
        )

    def handle(self, message: ResumeMessage, invocation: Invocation) -> Report:
        """Process one resume message: gate, take, admit, execute, commit.

        Raises:
            RunNotFoundError: No such run (the message is poison; SQS retries it
                until it reaches the DLQ).
            UnknownTaskError: The run's task is not registered in this process.
        """
        taken = self._deferred(message, invocation) or self._take(message, invocation)
        if isinstance(taken, Report):
            return taken
        run, fence, now = taken.run, taken.fence, taken.now
        started = TimelineEvent(now, EventKind.INVOCATION_STARTED, f"invocation {run.invocations}")
        if run.cancel_requested:
            # Its last holder died before it could end the run: end it now.
            return self._cancel(run, fence, started, "a cancel was requested")
        task = self._task_of(run, fence)
        if run.started_at is None and run.expires_at is not None and now >= run.expires_at:
            # Parked (its ttl timer fired) or granted a unit too late: either way
            # the unit it may hold goes back with the terminal checkpoint.
            expired = Expired(f"not started by {run.expires_at}")
            return self._commit(
                run, fence, expired, started, held=_Held(unit_of(run)), action=Action.EXPIRED
            )
        try:
            admitted = (
                self.admission.enter(run, self.registry.queue(run.queue, task), fence, taken.expiry)
                if self.admission is not None
                else Admitted(slot=None, first_start=run.started_at is None, at=now)
            )
        except CancelRequestedError as exc:  # refused its park or delay: the unit it may hold
            return self._cancel(run, fence, started, str(exc))
        if isinstance(admitted, Deferred):
            return Report(run.run_id, admitted.action, detail=admitted.detail)
        info = EventInfo(
            run.run_id,
            run.task_id,
            run.attempt,
            run.started_at is None,
            queue=run.queue,
            resume_lag=seconds_after(run.wake_at, now),
            # From when it could start (triggered, or its delay over) to its first
            # start: parked for a unit, held back by a rate limit, queued in SQS.
            slot_wait=(
                seconds_after(run.wake_at or run.created_at, admitted.at)
                if admitted.first_start
                else None
            ),
        )
        outcome, executed, replayed, metadata = self._execute(run, task, fence, invocation, info)
        held = _Held(admitted.slot, admitted.at if admitted.first_start else None, metadata)
        report = self._commit(run, fence, outcome, started, held=held, action=Action.EXECUTED)
        return replace(report, steps_executed=executed, steps_replayed=replayed)

    def _cancel(self, run: RunRecord, fence: Fence, started: TimelineEvent, detail: str) -> Report:
        """End a run whose cancel was requested, giving back the unit it may hold."""
        outcome = Canceled(detail)
        return self._commit(
            run, fence, outcome, started, held=_Held(unit_of(run)), action=Action.CANCELED
        )

    def _task_of(self, run: RunRecord, fence: Fence) -> Task[Any, Any]:
        try:
            return self.registry.get(run.task_id)
        except UnknownTaskError as exc:
            # Give the run back untouched so a worker that knows the task can take it.
            self.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.QUEUED))
            self.store.note_delivery_error(run.run_id, str(exc))
            raise

    def _margin(self, invocation: Invocation) -> float:
        settings = self.settings
        return safety_margin(
            invocation.timeout, settings.safety_margin_seconds, settings.safety_margin_fraction
        )

    def _deferred(self, message: ResumeMessage, invocation: Invocation) -> Report | None:
        """Hand the message on when this invocation has too little time left to use it."""
        if invocation.remaining() >= self._margin(invocation):
            return None
        # Late in a batch: too little time to make progress. Hand the message
        # to a fresh invocation rather than take a lease we cannot use.
        self.queue.send(message, 0)
        return Report(
            message.run_id, Action.DEFERRED, detail="too little time left in this invocation"
        )

    def _take(self, message: ResumeMessage, invocation: Invocation) -> _Taken | Report:
        """Take the run's lease, or say why this message executes nothing."""
        now = self.clock.now()
        owner = new_owner(invocation.request_id)
        expiry = lease_expiry(now, invocation.remaining())
        taken = self._take_lease(message, owner, expiry, now)
        if isinstance(taken, Report):
            return taken
        run = taken.run
        if taken.outcome is LeaseOutcome.NOT_FOUND or run is None:
            raise RunNotFoundError(f"no run {message.run_id!r}")
        if taken.outcome is LeaseOutcome.STALE:
            if run.status.is_terminal and message.epoch == run.epoch:
                # The message of the invocation that ended the run, delivered
                # again: that invocation may have died before its nudge (or,
                # for a cancel, before settling its tokens and children).
                self._nudge_parent(run)
                if run.status is RunStatus.CANCELED:
                    self.cancels.settle(run)
            return Report(
                run.run_id, Action.STALE, run.status, detail=f"epoch {message.epoch} vs {run.epoch}"
            )
        if taken.outcome is LeaseOutcome.BUSY and message.epoch == ANY_EPOCH:
            # A child's nudge to a parent that has not checkpointed its suspension
            # yet (the race): try again shortly, not at the lease's expiry.
            self.queue.send(message, NUDGE_RETRY_SECONDS)
            return Report(run.run_id, Action.BUSY, run.status, detail="nudge: parent running")
        if taken.outcome is LeaseOutcome.BUSY:
            # A duplicate while the holder lives. Keep a copy due when the lease
            # expires: if the holder dies, that copy recovers the run; if it
            # suspends first, the copy is stale and dropped.
            # A probe, not a wake-up: capped at SQS's delay even when the lease
            # runs longer, it comes back, finds the run busy again, and re-sends.
            self.queue.send(message, plan_in(delay_until(run.lease_expiry, now) + 1).delay_seconds)
            return Report(
                run.run_id, Action.BUSY, run.status, detail=f"held until {run.lease_expiry}"
            )
        if taken.outcome is LeaseOutcome.EARLY:
            # Further out than SQS's delay, the run's timer fires it: drop this copy.
            send_resume(self.queue, ResumeMessage(run.run_id, run.epoch), plan(run.wake_at, now))
            return Report(run.run_id, Action.EARLY, run.status, detail=f"wakes at {run.wake_at}")
        return _Taken(run, Fence(owner=owner, epoch=run.epoch), expiry, now)

    def _take_lease(
        self, message: ResumeMessage, owner: str, expiry: dt.datetime, now: dt.datetime
    ) -> LeaseResult | Report:
        """Take the lease; a child's nudge to a parent keeping a count is counted first.

        A parent waiting on one child keeps no count: the nudge takes it in one
        request. Waiting on many, it does: the take is refused, the child's end
        counted (once, however often told), and only a count that says a wait
        may have ended takes the parent, which then reads its children.
        """
        counted = message.child is not None
        taken = self.store.take_lease(
            message.run_id, message.epoch, owner, expiry, now, counted=counted
        )
        run = taken.run
        if (
            message.child is None
            or taken.outcome is not LeaseOutcome.STALE
            or run is None
            or run.status is not RunStatus.SUSPENDED
            or run.awaited_wake is None
        ):
            return taken
        if not self.store.note_child_end(message.run_id, message.child):
            return Report(
                run.run_id, Action.STALE, run.status, detail=f"nudge of {message.child} counted"
            )
        return self.store.take_lease(message.run_id, ANY_EPOCH, owner, expiry, now)

    def _execute(
        self,
        run: RunRecord,
        task: Task[Any, Any],
        fence: Fence,
        invocation: Invocation,
        info: EventInfo,
    ) -> tuple[Outcome, int, int, str | None]:
        if run.invocations > self.settings.max_hops:
            hops = HopLimitExceeded(
                f"run {run.run_id} took {run.invocations} invocations, above max_hops="
                f"{self.settings.max_hops}"
            )
            return Failed(ErrorInfo.from_exception(hops), "HopLimitExceeded"), 0, 0, None
        if task.max_duration is not None and self.clock.now() - run.created_at > task.max_duration:
            error = TerminalError(f"run exceeded the task's max_duration of {task.max_duration}")
            return Failed(ErrorInfo.from_exception(error), "max_duration"), 0, 0, None
        try:
            payload = task.decode_payload(run.payload)
            # A first invocation's journal is empty (entries are written under a lease)
            # unless a replay's copy was written before it. The read brings the run's
            # tokens along: a run woken by a completion reads no token of its own.
            first = run.invocations == 1 and run.replay_of is None
            history = History([]) if first else self.store.load_history(run.run_id)
            journal = Journal.of(history.entries)
        except DurableLambdaError as exc:
            return Failed(ErrorInfo.from_exception(exc), type(exc).__name__), 0, 0, None
        effects = RunEffects.of(run)
        env = Environment(
            now=self.clock.now,
            remaining=invocation.remaining,
            # Partials, not lambdas: one Python frame fewer on every step's record.
            record=effects.recorder(partial(self._record, info, fence)),
            transact=effects.transactor(partial(self.store.record_transaction, run.run_id, fence)),
            sleep=self.clock.sleep,
            safety_margin=self._margin(invocation),
            short_wait=self.settings.short_wait_seconds,
            rng=self.rng,
            observer=PluginObserver(info),
            children=(
                ChildLauncher(self.client, self.store, run, self.settings.max_child_depth)
                if self.client is not None
                else None
            ),
            tokens=None if self.tokens is None else KnownTokens(self.tokens, history.tokens),
            token_recheck=self.settings.token_recheck_seconds,
            api_base_url=self.settings.api_base_url or None,
            callback_key=self.callback_key,
        )
        execution = Execution(
            run_id=run.run_id, attempt=run.attempt, journal=journal, env=env, task_retry=task.retry
        )
        ctx = TaskContext(
            run_id=run.run_id,
            task_id=run.task_id,
            attempt=run.attempt,
            tags=run.tags,
            concurrency_key=run.concurrency_key,
            metadata=RunMetadata(effects),
        )
        emit("on_invocation_start", info)
        bound = bind(effects)
        try:
            outcome = execution.run(lambda: task.invoke(payload, ctx))
        finally:
            unbind(bound)
        emit("on_invocation_end", info, outcome_of(outcome))
        return outcome, execution.steps_executed, execution.steps_replayed, effects.document()

    def _record(
        self, info: EventInfo, fence: Fence, entry: JournalEntry, document: str | None
    ) -> None:
        """Write ``entry``; the run's metadata ``document`` rides along when it changed."""
        if document is None:
            self.store.record_entry(info.run_id, fence, entry)
        else:
            self.store.record_entry(info.run_id, fence, entry, document)
        emit("on_checkpoint", info, entry_bytes(entry))

    def _commit(
        self,
        run: RunRecord,
        fence: Fence,
        outcome: Outcome,
        started: TimelineEvent,
        *,
        held: _Held,
        action: Action,
    ) -> Report:
        """Write the checkpoint of ``outcome`` and send the run's next resume message."""
        now = self.clock.now()
        checkpoint = checkpoint_for(outcome, run, now, started=started)
        if checkpoint is None:
            reason = outcome.reason if isinstance(outcome, Abandoned) else ""
            return Report(run.run_id, Action.ABANDONED, detail=reason)
        if held.first_start is not None:
            checkpoint = replace(checkpoint, started_at=held.first_start)
        if held.metadata is not None:
            checkpoint = replace(checkpoint, metadata=held.metadata)
        try:
            stored = self._write_or_cancel(
                run, fence, checkpoint, held, keeps=not _releases(outcome)
            )
        except TerminalError as exc:
            # e.g. an output above the maximum size: fail the run with that reason.
            if checkpoint.status is RunStatus.FAILED:
                raise
            failed = Failed(ErrorInfo.from_exception(exc), str(exc))
            fallback = failed_checkpoint(failed, self.clock.now(), started=started)
            stored = self._write(run, fence, fallback, held.slot, keeps=False)
        if stored.status is RunStatus.SUSPENDED and not checkpoint.timer:
            resume = plan(stored.wake_at, self.clock.now())
            send_resume(self.queue, ResumeMessage(run.run_id, stored.epoch), resume)
        if checkpoint.output is not None:
            emit("on_checkpoint", info_of(run), len(checkpoint.output.encode()))
        if stored.status.is_terminal:
            self._nudge_parent(run)
            run_ended(stored)
        if stored.status is RunStatus.CANCELED:
            self.cancels.settle(stored)
        return Report(
            run.run_id,
            action,
            stored.status,
            detail=f"wake_at={stored.wake_at}" if stored.wake_at else "",
            task_id=run.task_id,
            hops=stored.invocations,
            error_type=stored.error.type if stored.error is not None else None,
        )

    def _write_or_cancel(
        self, run: RunRecord, fence: Fence, checkpoint: Checkpoint, held: _Held, *, keeps: bool
    ) -> RunRecord:
        """Write ``checkpoint``; refused for a cancel requested meanwhile, end the run CANCELED.

        The store refuses every write of the invocation but the CANCELED one
        once a cancel is requested, so a run whose cancel was accepted can
        never end COMPLETED; the entries it would have written ride along.
        """
        try:
            return self._write(run, fence, checkpoint, held.slot, keeps=keeps)
        except CancelRequestedError as exc:
            canceled = Canceled(str(exc), entries=checkpoint.entries)
            stopped = canceled_checkpoint(canceled, self.clock.now())
            events = (*checkpoint.events[:1], *stopped.events)  # its start event, if any
            stopped = replace(stopped, events=events, metadata=checkpoint.metadata)
            return self._write(run, fence, stopped, held.slot, keeps=False)

    def _nudge_parent(self, run: RunRecord) -> None:
        """Tell ``run``'s parent, if any, that it ended (counted once however often told).

        Sent after the terminal checkpoint (a worker killed in between leaves the
        message undeleted: its redelivery nudges again). A batched child counts its
        own end, and nudges only if that may end the wait or the parent keeps no
        count yet (``RunRecord.batched``); the parent's fallback wake covers the rest.
        """
        parent, child = run.parent_run_id, run.run_id
        if parent is not None and (not run.batched or self.store.note_child_end(parent, child)):
            self.queue.send(ResumeMessage(parent, ANY_EPOCH, child), 0)

    def _write(
        self,
        run: RunRecord,
        fence: Fence,
        checkpoint: Checkpoint,
        slot: SlotKey | None,
        *,
        keeps: bool,
    ) -> RunRecord:
        """Write ``checkpoint``; the unit of ``slot`` goes back unless the run ``keeps`` it.

        Terminal checkpoints go through :meth:`Admission.finish`, the one path
        that always gives the unit back and hands it on.
        """
        if self.admission is None:
            return self.store.checkpoint(run.run_id, fence, checkpoint)
        if checkpoint.status.is_terminal:
            return self.admission.finish(run.run_id, fence, checkpoint, slot)
        return self.admission.checkpoint(run.run_id, fence, checkpoint, None if keeps else slot)


@dataclass(frozen=True, slots=True)
class _Held:
    """What the invocation holds besides the lease.

    Attributes:
        slot: The counter whose unit it holds, if any.
        first_start: When it was admitted, if this is the run's first start.
        metadata: The run's metadata document, when the invocation changed it.
    """

    slot: SlotKey | None
    first_start: dt.datetime | None = None
    metadata: str | None = None


def _releases(outcome: Outcome) -> bool:
    """Whether the run gives back its concurrency unit after this outcome.

    It keeps the unit across a deadline hop (it continues at once) and when
    another invocation took the run over (the unit is that invocation's now).
    """
    if isinstance(outcome, Abandoned):
        return False
    return not (isinstance(outcome, Suspended) and outcome.reason is SuspendReason.DEADLINE)
