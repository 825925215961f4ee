"""The scheduler's tick: fire due timers and cron schedules, recover runs whose holder died.

No AWS import.

Every action is safe to repeat and safe to run twice at once: it only sends
resume messages, and a duplicate message loses the lease condition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from durable_lambda.admission import Admission
from durable_lambda.cron import occurrences, previous_occurrence
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import ANY_EPOCH, EventKind, ResumeMessage, TimelineEvent
from durable_lambda.engine.resume import MAX_DELAY_SECONDS, plan
from durable_lambda.messages import PoisonMessageError, decode_message, send_resume
from durable_lambda.plugins import emit, run_ended
from durable_lambda.ports import Clock, DeadLetters, ResumeQueue, RunStore, ScheduleStore
from durable_lambda.task import Task, TaskRegistry, Trigger

#: Timers due within SQS's longest delay are handed to SQS with the exact delay.
TIMER_HORIZON = dt.timedelta(seconds=MAX_DELAY_SECONDS)
#: Past its due time by this much, a run's resume message is presumed lost.
STRANDED_AFTER = dt.timedelta(minutes=2)
#: The longest pause between two resends of one overdue run's message.
MAX_RESEND_BACKOFF = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did."""

    timers_fired: int
    leases_recovered: int
    dead_letters_failed: int = 0
    lost_messages_resent: int = 0
    slots_handed_off: int = 0
    cron_runs: int = 0
    #: Runs found past their wake time with no live holder (stuck; some were resent).
    overdue_runs: int = 0
    #: Messages read from the dead-letter queue (each failed its run or was stale).
    dead_letters_read: int = 0


@dataclass(slots=True)
class CronFirer:
    """Fires due occurrences of every cron task, each exactly once.

    Two schedulers ticking at once both trigger an occurrence with the same
    idempotency key, so only one run exists; the cursor only moves forward.

    Attributes:
        registry: The tasks whose schedules are fired.
        schedules: Each schedule's cursor (the last occurrence fired).
        client: What starts the runs (a :class:`~durable_lambda.client.Client`).
        clock: Now.
    """

    registry: TaskRegistry
    schedules: ScheduleStore
    client: Trigger
    clock: Clock

    def fire(self) -> int:
        """Trigger every due occurrence; returns how many runs were created."""
        now = self.clock.now()
        created = 0
        for task in self.registry.tasks():
            if task.cron is not None:
                created += self._fire_task(task, task.cron, now)
        return created

    def _fire_task(self, task: Task[Any, Any], expression: str, now: dt.datetime) -> int:
        last = self.schedules.last_fired(task.id)
        if last is None:
            # First sight of this schedule: start from the latest past
            # occurrence without firing it (no backfill at deploy time).
            first = previous_occurrence(expression, task.timezone, now)
            self.schedules.mark_fired(task.id, None, first)
            return 0
        created = 0
        previous = last
        for when in occurrences(expression, task.timezone, last, now):
            payload = {
                "timestamp": when.isoformat(),
                "last_timestamp": previous.isoformat(),
                "timezone": task.timezone,
            }
            handle = self.client.trigger(
                task, payload, idempotency_key=f"cron:{task.id}:{when.isoformat()}"
            )
            created += 0 if handle.cached else 1
            if not self.schedules.mark_fired(task.id, previous, when):
                break  # another scheduler moved the cursor: it fires the rest
            previous = when
        return created


@dataclass(frozen=True, slots=True)
class _Resend:
    """The last time a stranded run's message was sent again."""

    epoch: int
    count: int
    next_at: dt.datetime


class Scheduler:
    """Fires timers and recovers expired leases."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: ResumeQueue,
        clock: Clock,
        dead_letters: DeadLetters | None = None,
        admission: Admission | None = None,
        cron: CronFirer | None = None,
        stranded_after: dt.timedelta = STRANDED_AFTER,
    ) -> None:
        """Wire the scheduler to its ports (each optional part adds a duty).

        ``stranded_after``: how long past its due time a QUEUED or SUSPENDED run
        must be before its resume message is presumed lost and sent again.
        """
        self.store = store
        self.queue = queue
        self.clock = clock
        self.dead_letters = dead_letters
        self.admission = admission
        self.cron = cron
        self.stranded_after = stranded_after
        self._resends: dict[str, _Resend] = {}

    def tick(self, batch: int = 100) -> TickReport:
        """Run one tick (the scheduler function runs this every minute)."""
        now = self.clock.now()
        fired = 0
        for timer in self.store.due_timers(now + TIMER_HORIZON, limit=batch):
            # Send first, then delete: a crash in between costs a duplicate
            # message (harmless), never a lost wake-up.
            send_resume(
                self.queue, ResumeMessage(timer.run_id, timer.epoch), plan(timer.wake_at, now)
            )
            self.store.delete_timer(timer)
            fired += 1
        recovered = 0
        for run in self.store.expired_leases(now, limit=batch):
            self.queue.send(ResumeMessage(run.run_id, run.epoch), 0)
            recovered += 1
        overdue, resent = self._resend_stranded(now, batch)
        read, failed = self._drain_dead_letters() if self.dead_letters is not None else (0, 0)
        handed = self.hand_off_slots(batch) if self.admission is not None else 0
        cron_runs = self.cron.fire() if self.cron is not None else 0
        report = TickReport(
            timers_fired=fired,
            leases_recovered=recovered,
            dead_letters_failed=failed,
            lost_messages_resent=resent,
            slots_handed_off=handed,
            cron_runs=cron_runs,
            overdue_runs=overdue,
            dead_letters_read=read,
        )
        emit("on_scheduler_tick", report)
        return report

    def resend_stranded(self, now: dt.datetime, batch: int = 100) -> int:
        """Send again the resume message of runs long overdue; how many were sent.

        Overdue may mean lost, or queued behind a backlog. A duplicate is harmless
        for correctness (it loses the lease condition) but costs an invocation,
        and duplicates every tick would lengthen the very backlog that delays the
        run. So each run is resent at once, then after twice, four times... the
        ``stranded_after`` horizon (capped at :data:`MAX_RESEND_BACKOFF`), while it
        stays overdue at the same epoch. The memory is this warm environment's:
        a cold start forgets it and costs one more duplicate per run.
        """
        return self._resend_stranded(now, batch)[1]

    def _resend_stranded(self, now: dt.datetime, batch: int) -> tuple[int, int]:
        """How many runs are overdue, and how many of them were resent now."""
        overdue = self.store.stranded_runs(now - self.stranded_after, limit=batch)
        self._resends = {
            r.run_id: self._resends[r.run_id] for r in overdue if r.run_id in self._resends
        }
        sent = 0
        for run in overdue:
            last = self._resends.get(run.run_id)
            if last is not None and last.epoch == run.epoch and now < last.next_at:
                continue  # resent recently: its message is probably on its way
            count = last.count + 1 if last is not None and last.epoch == run.epoch else 1
            backoff = min(self.stranded_after * 2 ** (count - 1), MAX_RESEND_BACKOFF)
            self.queue.send(ResumeMessage(run.run_id, run.epoch), 0)
            self._resends[run.run_id] = _Resend(run.epoch, count, now + backoff)
            sent += 1
        return len(overdue), sent

    def hand_off_slots(self, batch: int = 100) -> int:
        """The fallback for lost wake-ups: reclaim dead holders' units, hand units to parked runs.

        Also how a raised limit or a resumed queue takes effect without a release.
        """
        if self.admission is None:
            return 0  # no queue limits are enforced: nothing is ever parked
        return sum(
            self.admission.reap_and_hand_off(key)
            for key in self.admission.slots.keys_with_waiters(batch)
        )

    def fail_dead_lettered_runs(self, rounds: int = 10) -> int:
        """Mark FAILED each run whose current resume message reached the DLQ, with the reason.

        A letter of an older epoch than its run's, or of a run held by a live
        invocation, is a stale duplicate: deleted, failing nothing.

        Dead letters whose body cannot be decoded, or that name no run, stay in
        the DLQ for a person to look at (its depth raises an alarm).
        """
        return self._drain_dead_letters(rounds)[1]

    def _drain_dead_letters(self, rounds: int = 10) -> tuple[int, int]:
        """How many dead letters were read, and how many runs they failed."""
        if self.dead_letters is None:
            return 0, 0  # no DLQ configured: nothing to read
        read = failed = 0
        for _ in range(rounds):
            letters = self.dead_letters.receive(10)
            if not letters:
                break
            read += len(letters)
            for letter in letters:
                try:
                    message = decode_message(letter.body)
                except PoisonMessageError:
                    continue
                run = self.store.get_run(message.run_id)
                if run is None:
                    continue
                reason = run.last_delivery_error or "its resume message could not be processed"
                error = ErrorInfo(
                    type="durable_lambda.DeadLettered",
                    message=f"resume message dead-lettered: {reason}",
                )
                event = TimelineEvent(
                    self.clock.now(), EventKind.DEAD_LETTERED, error.message[:500]
                )
                # Fenced by the letter's epoch: a stale duplicate fails nothing. The
                # admission path also gives back the unit the run may hold.
                if self.admission is not None:
                    ended = self.admission.fail(run.run_id, message.epoch, error, event)
                else:
                    ended = self.store.fail_run(run.run_id, error, event, epoch=message.epoch)
                if ended is not None:
                    failed += 1
                    run_ended(ended)
                    if ended.parent_run_id is not None:
                        # A child ended here, not in a worker: wake its parent as a worker would.
                        self.queue.send(
                            ResumeMessage(ended.parent_run_id, ANY_EPOCH, ended.run_id), 0
                        )
                self.dead_letters.delete(letter.receipt_handle)
        return read, failed
