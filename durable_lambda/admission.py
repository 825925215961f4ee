"""Admission: may a taken run execute now? Rate limit first, then a concurrency unit.

A run that may not is parked (no slot) or delayed (rate limit) in one fenced
checkpoint, and costs no invocation while it waits: the release of a unit
hands it on and sends the parked run's resume message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.records import (
    Checkpoint,
    EventKind,
    Fence,
    Park,
    ResumeMessage,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.resume import plan
from durable_lambda.engine.slots import AcquireOutcome, AcquireResult, QueueState, SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ReleaseNotFoldedError, SlotAvailableError
from durable_lambda.messages import send_resume
from durable_lambda.ports import Clock, RateStore, ResumeQueue, RunStore, SlotStore
from durable_lambda.queue import Queue

#: Attempts to park before giving up on a counter that keeps changing under us.
PARK_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Admitted:
    """The run may execute.

    Attributes:
        slot: The counter it holds a unit of (``None``: no limit applies).
        first_start: This is the run's first start (record ``started_at``).
        at: The instant of admission: for a rate-limited queue, exactly the
            start the rate window recorded, so ``started_at`` and the window agree.
    """

    slot: SlotKey | None
    first_start: bool
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Deferred:
    """The run was parked or delayed; the invocation ends here."""

    action: Action  # PARKED or RATE_LIMITED
    detail: str


def unit_of(run: RunRecord) -> SlotKey:
    """The counter whose unit ``run`` holds while it executes, if its queue is limited."""
    return SlotKey(run.queue, run.concurrency_key)


class Admission:
    """Applies a queue's rate limit and concurrency limit to runs as they are taken."""

    def __init__(
        self,
        *,
        slots: SlotStore,
        rates: RateStore,
        store: RunStore,
        queue: ResumeQueue,
        clock: Clock,
        grant_seconds: float = 900.0,
        control_ttl: float = 10.0,
    ) -> None:
        """Wire admission to its ports.

        Args:
            slots: The concurrency counters.
            rates: The rate windows.
            store: The run store (parking is part of the run's checkpoint).
            queue: Where handed-off runs' resume messages go.
            clock: Time.
            grant_seconds: How long a unit handed to a parked run stays reserved
                for it before the scheduler may reclaim it (its message was lost).
            control_ttl: Seconds a warm worker caches an unlimited queue's
                pause/override state.
        """
        self.slots = slots
        self.rates = rates
        self.store = store
        self.queue = queue
        self.clock = clock
        self.grant_seconds = grant_seconds
        self.control_ttl = control_ttl
        self._controls: dict[SlotKey, tuple[float, QueueState]] = {}

    def enter(
        self, run: RunRecord, queue: Queue, fence: Fence, expiry: dt.datetime
    ) -> Admitted | Deferred:
        """Admit ``run`` (held under ``fence`` until ``expiry``), or park or delay it."""
        key = unit_of(run)
        first = run.started_at is None
        now = self.clock.now()
        rated: dt.datetime | None = None  # the start this admission records in the rate window
        # A run counts once against the rate limit: one parked after passing it
        # is not counted again when a unit is handed to it.
        if first and queue.rate_limit is not None and run.admitted_at is None:
            retry_in = self.rates.admit(
                key.id, queue.rate_limit.limit, queue.rate_limit.period, now
            )
            if retry_in > 0:
                return self._delay(run, fence, retry_in, now)
            rated = now
        if not self._limited(key, queue):
            return Admitted(slot=None, first_start=first, at=now)
        for _ in range(PARK_ATTEMPTS):
            result = self._acquire(key, run, queue, expiry)
            if result.holds:
                return Admitted(slot=key, first_start=first, at=now)
            try:
                return self._park(run, queue, key, fence, result, rated=rated)
            except SlotAvailableError:
                continue  # a unit was released between our acquire and park
        return self._delay(run, fence, 1.0, self.clock.now())

    def leave(self, key: SlotKey, run_id: str) -> None:
        """Give back ``run_id``'s unit and hand units to parked runs while there is room."""
        state = self.slots.release(key, run_id)
        if state is not None and state.waiting:
            self.hand_off(key)

    def hand_off(self, key: SlotKey) -> int:
        """Grant units to parked runs of ``key`` while there is room; returns how many."""
        granted = 0
        now = self.clock.now()
        expiry = now + dt.timedelta(seconds=self.grant_seconds)
        while True:
            message = self.slots.grant_next(key, expiry, now)
            if message is None:
                return granted
            self.queue.send(message, 0)
            granted += 1

    def reap_and_hand_off(self, key: SlotKey) -> int:
        """Reclaim units of holders whose expiry passed, then hand units on (the scheduler)."""
        now = self.clock.now()
        for holder in self.slots.state(key).expired(now):
            self.slots.reap(key, holder)
        return self.hand_off(key)

    # -- checkpoints that give a unit back -------------------------------------------------

    def checkpoint(
        self, run_id: str, fence: Fence, checkpoint: Checkpoint, slot: SlotKey | None
    ) -> RunRecord:
        """Write ``checkpoint``, giving back the run's unit of ``slot`` in the same write if it can.

        Folding the release into the checkpoint costs no request and leaves no
        window in which a crash could keep the unit held by a run that let go.
        When runs are parked on the counter (or the run holds no unit there), the
        checkpoint is written alone, then the unit released and handed on.
        """
        if slot is None:
            return self.store.checkpoint(run_id, fence, checkpoint)
        try:
            return self.store.checkpoint(run_id, fence, replace(checkpoint, release=slot))
        except ReleaseNotFoldedError:
            stored = self.store.checkpoint(run_id, fence, checkpoint)
            self.leave(slot, run_id)
            return stored

    def finish(
        self, run_id: str, fence: Fence, checkpoint: Checkpoint, slot: SlotKey | None
    ) -> RunRecord:
        """End a run in an invocation: the one way every terminal checkpoint is written.

        COMPLETED, FAILED, EXPIRED and CANCELED alike give back the unit of
        ``slot`` (the counter the run holds, or may hold, a unit of) and hand it
        to the next parked run, so no terminal path can keep a unit.

        Raises:
            ValueError: ``checkpoint`` does not end the run.
        """
        if not checkpoint.status.is_terminal:
            raise ValueError(f"finish needs a terminal status, got {checkpoint.status}")
        return self.checkpoint(run_id, fence, checkpoint, slot)

    def fail(
        self, run_id: str, epoch: int, error: ErrorInfo, event: TimelineEvent
    ) -> RunRecord | None:
        """End a run from outside any invocation (a dead letter): FAILED, then its unit back.

        Fenced by ``epoch``: only a run still at the epoch of the message that
        failed, and not held by a live invocation, is failed; ``None`` otherwise.
        """
        failed = self.store.fail_run(run_id, error, event, epoch=epoch)
        if failed is not None:
            self.leave(unit_of(failed), run_id)
        return failed

    # -- internals -----------------------------------------------------------------------

    def _limited(self, key: SlotKey, queue: Queue) -> bool:
        if queue.concurrency_limit is not None:
            return True
        # An unlimited queue may still be paused or given a limit at runtime:
        # read its control state at most every ``control_ttl`` seconds.
        cached = self._controls.get(key)
        now = self.clock.monotonic()
        if cached is None or cached[0] < now:
            cached = (now + self.control_ttl, self.slots.state(key))
            self._controls[key] = cached
        state = cached[1]
        return state.paused or state.limit_override is not None

    def _acquire(
        self, key: SlotKey, run: RunRecord, queue: Queue, expiry: dt.datetime
    ) -> AcquireResult:
        now = self.clock.now()
        result = self.slots.acquire(key, run.run_id, expiry, queue.concurrency_limit)
        if result.outcome is AcquireOutcome.FULL and result.state.expired(now):
            # A killed holder's unit: reclaim it, then try once more.
            for holder in result.state.expired(now):
                self.slots.reap(key, holder)
            result = self.slots.acquire(key, run.run_id, expiry, queue.concurrency_limit)
        return result

    def _park(
        self,
        run: RunRecord,
        queue: Queue,
        key: SlotKey,
        fence: Fence,
        result: AcquireResult,
        *,
        rated: dt.datetime | None,
    ) -> Deferred:
        now = self.clock.now()
        why = "paused" if result.outcome is AcquireOutcome.PAUSED else "full"
        park = Park(
            key=key,
            priority=run.priority,
            enqueued_at=run.created_at,
            code_limit=queue.concurrency_limit,
            # A run not started by its ttl expires while parked, full or paused queue alike.
            expires_at=run.expires_at if run.started_at is None else None,
        )
        event = TimelineEvent(now, EventKind.PARKED, f"queue {key.id} {why}")
        self.store.checkpoint(
            run.run_id,
            fence,
            Checkpoint(
                status=RunStatus.WAITING_FOR_SLOT,
                new_epoch=True,
                park=park,
                events=(event,),
                admitted_at=rated,
            ),
        )
        # Parked behind others while there is room (e.g. just after a limit was
        # raised): make sure somebody hands units on now.
        if result.state.has_room and not result.state.paused:
            self.hand_off(key)
        return Deferred(Action.PARKED, f"queue {key.id} {why}")

    def _delay(self, run: RunRecord, fence: Fence, retry_in: float, now: dt.datetime) -> Deferred:
        wake = now + dt.timedelta(seconds=retry_in)
        resume = plan(wake, now)
        event = TimelineEvent(now, EventKind.RATE_LIMITED, f"queue {run.queue}", delay=retry_in)
        stored = self.store.checkpoint(
            run.run_id,
            fence,
            Checkpoint(
                status=RunStatus.QUEUED,
                wake_at=wake,
                new_epoch=True,
                events=(event,),
                timer=resume.timer,
            ),
        )
        send_resume(self.queue, ResumeMessage(run.run_id, stored.epoch), resume)
        return Deferred(Action.RATE_LIMITED, f"retry in {retry_in:.1f} s")
