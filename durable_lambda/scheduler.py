"""The scheduler's tick: fire due timers and recover runs whose holder died. No AWS import.

Every action is safe to repeat and safe to run twice at once: it only sends
resume messages, and a duplicate message loses the lease condition.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from durable_lambda.ports import Clock, ResumeQueue, RunStore
from durable_lambda.records import ResumeMessage

#: Timers due within SQS's longest delay are handed to SQS with the exact delay.
TIMER_HORIZON = dt.timedelta(seconds=900)


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did."""

    timers_fired: int
    leases_recovered: int


class Scheduler:
    """Fires timers and recovers expired leases."""

    def __init__(self, *, store: RunStore, queue: ResumeQueue, clock: Clock) -> None:
        """Wire the scheduler to its ports."""
        self.store = store
        self.queue = queue
        self.clock = clock

    def tick(self, batch: int = 100) -> TickReport:
        """Run one tick (the scheduler function runs this every minute)."""
        now = self.clock.now()
        fired = 0
        for timer in self.store.due_timers(now + TIMER_HORIZON, limit=batch):
            delay = max(0.0, (timer.wake_at - now).total_seconds())
            # Send first, then delete: a crash in between costs a duplicate
            # message (harmless), never a lost wake-up.
            self.queue.send(ResumeMessage(timer.run_id, timer.epoch), math.ceil(delay))
            self.store.delete_timer(timer)
            fired += 1
        recovered = 0
        for run in self.store.expired_leases(now, limit=batch):
            self.queue.send(ResumeMessage(run.run_id, run.epoch), 0)
            recovered += 1
        return TickReport(timers_fired=fired, leases_recovered=recovered)
