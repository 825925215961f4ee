"""The worker: one resume message in, one invocation of a run out. No AWS import.

Take the run's lease (a duplicate or stale message loses and executes
nothing), replay its journal, execute new steps, then write one fenced
checkpoint and send the next resume message (or index a timer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from durable_lambda.admission import Admission, Admitted, Deferred, unit_of
from durable_lambda.context import TaskContext
from durable_lambda.engine.execution import Environment, Execution
from durable_lambda.engine.journal import ErrorInfo, Journal
from durable_lambda.engine.lease import lease_expiry, safety_margin
from durable_lambda.engine.outcome import (
    Abandoned,
    Completed,
    Failed,
    Outcome,
    RetryRun,
    Suspended,
    SuspendReason,
)
from durable_lambda.engine.retry import RandomSource
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    DurableLambdaError,
    HopLimitExceeded,
    RunNotFoundError,
    TerminalError,
    UnknownTaskError,
)
from durable_lambda.ids import new_owner
from durable_lambda.messages import MAX_DELAY_SECONDS, delay_until, sqs_delay
from durable_lambda.ports import Clock, ResumeQueue, RunStore
from durable_lambda.records import (
    Checkpoint,
    EventKind,
    Fence,
    LeaseOutcome,
    ResumeMessage,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.settings import Settings
from durable_lambda.task import Task, TaskRegistry


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
    action: str  # executed | stale | early | busy | deferred | abandoned | parked | rate_limited
    status: RunStatus | None = None
    steps_executed: int = 0
    steps_replayed: int = 0
    detail: str = ""
    first_start: dt.datetime | None = None
    release: SlotKey | None = None
    holds: SlotKey | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    ) -> None:
        """Wire the worker to its ports (``admission``: queue limits; ``None`` admits all)."""
        self.store = store
        self.queue = queue
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.admission = admission

    def handle(self, message: ResumeMessage, invocation: Invocation) -> Report:
        """Process one resume message.

        Raises:
            RunNotFoundError: No such run (the message is poison; SQS retries it
                until it reaches the DLQ).
            UnknownTaskError: The run's task is not registered in this process.
        """
        taken = self._take(message, invocation)
        if isinstance(taken, Report):
            return taken
        run, fence, now = taken.run, taken.fence, taken.now
        started = TimelineEvent(now, EventKind.INVOCATION_STARTED, f"invocation {run.invocations}")
        try:
            task = self.registry.get(run.task_id)
        except UnknownTaskError as exc:
            # Give the run back untouched so a worker that knows the task can take it.
            self.store.checkpoint(run.run_id, fence, Checkpoint(status=RunStatus.QUEUED))
            self.store.note_delivery_error(run.run_id, str(exc))
            raise
        if run.started_at is None and run.expires_at is not None and now >= run.expires_at:
            # Parked (its ttl timer fired) or granted a unit too late: either way
            # the unit it may hold goes back with the terminal checkpoint.
            expired = TimelineEvent(now, EventKind.EXPIRED, f"not started by {run.expires_at}")
            checkpoint = Checkpoint(status=RunStatus.EXPIRED, events=(started, expired))
            self._finish(run.run_id, fence, checkpoint, unit_of(run))
            return Report(run.run_id, "expired", RunStatus.EXPIRED)
        admitted = (
            self.admission.enter(run, self.registry.queue(run.queue, task), fence, taken.expiry)
            if self.admission is not None
            else Admitted(slot=None, first_start=run.started_at is None, at=now)
        )
        if isinstance(admitted, Deferred):
            return Report(run.run_id, admitted.action, detail=admitted.detail)
        outcome, executed, replayed = self._execute(run, task, fence, invocation)
        report = Report(
            run.run_id,
            "executed",
            steps_executed=executed,
            steps_replayed=replayed,
            first_start=admitted.at if admitted.first_start else None,
            release=admitted.slot if _releases(outcome) else None,
            holds=admitted.slot,
        )
        return self._apply(run, fence, outcome, started, report)

    def _take(self, message: ResumeMessage, invocation: Invocation) -> _Taken | Report:
        """Take the run's lease, or say why this message executes nothing."""
        now = self.clock.now()
        margin = safety_margin(
            invocation.timeout,
            self.settings.safety_margin_seconds,
            self.settings.safety_margin_fraction,
        )
        if invocation.remaining() < margin:
            # Late in a batch: too little time to make progress. Hand the message
            # to a fresh invocation rather than take a lease we cannot use.
            self.queue.send(message, 0)
            return Report(
                message.run_id, "deferred", detail="too little time left in this invocation"
            )
        owner = new_owner(invocation.request_id)
        expiry = lease_expiry(now, invocation.remaining())
        taken = self.store.take_lease(message.run_id, message.epoch, owner, expiry, now)
        if taken.outcome is LeaseOutcome.NOT_FOUND:
            raise RunNotFoundError(f"no run {message.run_id!r}")
        run = taken.run
        assert run is not None  # noqa: S101 - every other outcome carries the run
        if taken.outcome is LeaseOutcome.STALE:
            return Report(
                run.run_id, "stale", run.status, detail=f"epoch {message.epoch} vs {run.epoch}"
            )
        if taken.outcome is LeaseOutcome.BUSY:
            # A duplicate while the holder lives. Keep a copy due when the lease
            # expires: if the holder dies, that copy recovers the run; if it
            # suspends first, the copy is stale and dropped.
            wait_s = delay_until(run.lease_expiry, now) + 1
            self.queue.send(message, sqs_delay(wait_s))
            return Report(run.run_id, "busy", run.status, detail=f"held until {run.lease_expiry}")
        if taken.outcome is LeaseOutcome.EARLY:
            self._resend_early(run, now)
            return Report(run.run_id, "early", run.status, detail=f"wakes at {run.wake_at}")
        return _Taken(run, Fence(owner=owner, epoch=run.epoch), expiry, now)

    def _execute(
        self, run: RunRecord, task: Task[Any, Any], fence: Fence, invocation: Invocation
    ) -> tuple[Outcome, int, int]:
        if run.invocations > self.settings.max_hops:
            hops = HopLimitExceeded(
                f"run {run.run_id} took {run.invocations} invocations, above max_hops="
                f"{self.settings.max_hops}"
            )
            return Failed(ErrorInfo.from_exception(hops), "HopLimitExceeded"), 0, 0
        if task.max_duration is not None and self.clock.now() - run.created_at > task.max_duration:
            error = TerminalError(f"run exceeded the task's max_duration of {task.max_duration}")
            return Failed(ErrorInfo.from_exception(error), "max_duration"), 0, 0
        try:
            payload = task.decode_payload(run.payload)
            journal = Journal.of(self.store.load_journal(run.run_id))
        except DurableLambdaError as exc:
            return Failed(ErrorInfo.from_exception(exc), type(exc).__name__), 0, 0
        env = Environment(
            now=self.clock.now,
            remaining=invocation.remaining,
            record=lambda entry: self.store.record_entry(run.run_id, fence, entry),
            sleep=self.clock.sleep,
            safety_margin=safety_margin(
                invocation.timeout,
                self.settings.safety_margin_seconds,
                self.settings.safety_margin_fraction,
            ),
            short_wait=self.settings.short_wait_seconds,
            rng=self.rng,
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
        )
        outcome = execution.run(lambda: task.invoke(payload, ctx))
        return outcome, execution.steps_executed, execution.steps_replayed

    def _apply(
        self,
        run: RunRecord,
        fence: Fence,
        outcome: Outcome,
        started: TimelineEvent,
        report: Report,
    ) -> Report:
        now = self.clock.now()
        if isinstance(outcome, Abandoned):
            return Report(run.run_id, "abandoned", detail=outcome.reason)
        if isinstance(outcome, Completed):
            checkpoint = Checkpoint(
                status=RunStatus.COMPLETED,
                output=outcome.output,
                entries=outcome.entries,
                events=(started, TimelineEvent(now, EventKind.COMPLETED)),
            )
            return self._commit(run, fence, checkpoint, report)
        if isinstance(outcome, Failed):
            checkpoint = Checkpoint(
                status=RunStatus.FAILED,
                error=outcome.error,
                entries=outcome.entries,
                events=(started, TimelineEvent(now, EventKind.FAILED, _short(outcome.reason))),
            )
            return self._commit(run, fence, checkpoint, report)
        if isinstance(outcome, RetryRun):
            wake = now + dt.timedelta(seconds=outcome.delay)
            event = TimelineEvent(
                now,
                EventKind.RUN_RETRY_SCHEDULED,
                _short(f"{outcome.error.type}: {outcome.error.message} ({outcome.reason})"),
                delay=outcome.delay,
            )
            checkpoint = Checkpoint(
                status=RunStatus.SUSPENDED,
                wake_at=wake,
                new_epoch=True,
                error=outcome.error,
                attempt=run.attempt + 1,
                events=(started, event),
                timer=outcome.delay > MAX_DELAY_SECONDS,
            )
            return self._commit(run, fence, checkpoint, report)
        return self._suspend(run, fence, outcome=outcome, started=started, now=now, report=report)

    def _suspend(
        self,
        run: RunRecord,
        fence: Fence,
        *,
        outcome: Suspended,
        started: TimelineEvent,
        now: dt.datetime,
        report: Report,
    ) -> Report:
        delay = delay_until(outcome.wake_at, now)
        kind = (
            EventKind.STEP_RETRY_SCHEDULED
            if outcome.reason is SuspendReason.STEP_RETRY
            else EventKind.SUSPENDED
        )
        event = TimelineEvent(
            now, kind, _short(f"{outcome.reason.value}: {outcome.detail}"), delay=delay
        )
        checkpoint = Checkpoint(
            status=RunStatus.SUSPENDED,
            wake_at=outcome.wake_at,
            new_epoch=True,
            entries=outcome.entries,
            events=(started, event),
            timer=delay > MAX_DELAY_SECONDS,
        )
        return self._commit(run, fence, checkpoint, report)

    def _commit(
        self, run: RunRecord, fence: Fence, checkpoint: Checkpoint, report: Report
    ) -> Report:
        if report.first_start is not None:
            checkpoint = replace(checkpoint, started_at=report.first_start)
        try:
            if checkpoint.status.is_terminal:
                stored = self._finish(run.run_id, fence, checkpoint, report.holds)
            else:
                stored = self._checkpoint_releasing(run, fence, checkpoint, report.release)
        except TerminalError as exc:
            # e.g. an output above the maximum size: fail the run with that reason.
            if checkpoint.status is RunStatus.FAILED:
                raise
            failed = Checkpoint(
                status=RunStatus.FAILED,
                error=ErrorInfo.from_exception(exc),
                events=(
                    *checkpoint.events[:1],
                    TimelineEvent(self.clock.now(), EventKind.FAILED, _short(str(exc))),
                ),
            )
            stored = self._finish(run.run_id, fence, failed, report.holds)
        if stored.status is RunStatus.SUSPENDED and not checkpoint.timer:
            delay = delay_until(stored.wake_at, self.clock.now())
            self.queue.send(ResumeMessage(run.run_id, stored.epoch), sqs_delay(delay))
        return Report(
            run.run_id,
            report.action,
            stored.status,
            report.steps_executed,
            report.steps_replayed,
            detail=f"wake_at={stored.wake_at}" if stored.wake_at else "",
        )

    def _checkpoint_releasing(
        self, run: RunRecord, fence: Fence, checkpoint: Checkpoint, slot: SlotKey | None
    ) -> RunRecord:
        """Write a checkpoint that does not end the run, giving back the unit of ``slot``."""
        if self.admission is None:
            return self.store.checkpoint(run.run_id, fence, checkpoint)
        return self.admission.checkpoint(run.run_id, fence, checkpoint, slot)

    def _finish(
        self, run_id: str, fence: Fence, checkpoint: Checkpoint, slot: SlotKey | None
    ) -> RunRecord:
        """Write a terminal checkpoint through :meth:`Admission.finish` (the unit goes back)."""
        if self.admission is None:
            return self.store.checkpoint(run_id, fence, checkpoint)
        return self.admission.finish(run_id, fence, checkpoint, slot)

    def _resend_early(self, run: RunRecord, now: dt.datetime) -> None:
        delay = delay_until(run.wake_at, now)
        if delay <= MAX_DELAY_SECONDS:
            self.queue.send(ResumeMessage(run.run_id, run.epoch), sqs_delay(delay))
        # Further out, the run's timer fires it; this message is simply dropped.


def _releases(outcome: Outcome) -> bool:
    """Whether the run gives back its concurrency unit after this outcome.

    It keeps the unit across a deadline hop (it continues at once) and when
    another invocation took the run over (the unit is that invocation's now).
    """
    if isinstance(outcome, Abandoned):
        return False
    return not (isinstance(outcome, Suspended) and outcome.reason is SuspendReason.DEADLINE)


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
