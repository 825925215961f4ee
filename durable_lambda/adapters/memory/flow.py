"""In-memory flow control: concurrency counters with holders, parked runs, rate logs, cron cursors.

It shares the lock of the :class:`MemoryRunStore` it belongs to, because
parking a run and handing it a unit change the run and the counter together,
as one DynamoDB transaction does.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from durable_lambda.engine.records import Park, ResumeMessage
from durable_lambda.engine.slots import (
    AcquireOutcome,
    AcquireResult,
    Holder,
    QueueState,
    SlotKey,
    rate_decision,
    validate_limit_override,
    waiter_order,
)
from durable_lambda.errors import ReleaseNotFoldedError, SlotAvailableError

if TYPE_CHECKING:
    from durable_lambda.adapters.memory.runs import MemoryRunStore

#: Reads one ``grant_next`` may make (stale waiters dropped, races lost) before giving up.
MAX_GRANT_ROUNDS = 30


@dataclass(slots=True)
class _Counter:
    state: QueueState
    # waiter order key -> (run id, epoch it parked at)
    waiters: dict[str, tuple[str, int]] = field(default_factory=dict)


class MemoryFlowStore:
    """Slots, rate windows and cron cursors, with the DynamoDB adapter's semantics."""

    def __init__(self, runs: MemoryRunStore, lock: threading.Lock) -> None:
        """Share ``lock`` with ``runs``.

        ``runs`` owns this store, so it is held weakly: no reference cycle, and
        a finished runner's stores are freed at once rather than left for the
        garbage collector's full passes (which cost ~50 ms each on a test
        process's heap).
        """
        self._runs = weakref.proxy(runs)
        self._lock = lock
        self._counters: dict[SlotKey, _Counter] = {}
        self._rates: dict[str, tuple[float, ...]] = {}
        self._cron: dict[str, dt.datetime] = {}
        self.requests = 0

    def _counter(self, key: SlotKey) -> _Counter:
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(QueueState(key))
        return counter

    # -- slots -----------------------------------------------------------------------

    def acquire(
        self,
        key: SlotKey,
        run_id: str,
        expiry: dt.datetime,
        code_limit: int | None,
    ) -> AcquireResult:
        """Take (or keep) a unit for ``run_id``."""
        with self._lock:
            self.requests += 1
            counter = self._counter(key)
            state = replace(counter.state, code_limit=code_limit)
            if state.holds(run_id):
                holders = tuple(
                    Holder(run_id, expiry) if h.run_id == run_id else h for h in state.holders
                )
                counter.state = replace(state, holders=holders)
                return AcquireResult(AcquireOutcome.HELD, counter.state)
            counter.state = state
            if state.paused:
                return AcquireResult(AcquireOutcome.PAUSED, state)
            if not state.has_room or state.waiting:
                return AcquireResult(AcquireOutcome.FULL, state)
            counter.state = replace(state, holders=(*state.holders, Holder(run_id, expiry)))
            return AcquireResult(AcquireOutcome.ACQUIRED, counter.state)

    def release(self, key: SlotKey, run_id: str) -> QueueState | None:
        """Give back a unit; ``None`` if ``run_id`` held none."""
        with self._lock:
            self.requests += 1
            counter = self._counter(key)
            if not counter.state.holds(run_id):
                return None
            holders = tuple(h for h in counter.state.holders if h.run_id != run_id)
            counter.state = replace(counter.state, holders=holders)
            return counter.state

    def reap(self, key: SlotKey, holder: Holder) -> bool:
        """Remove ``holder`` if it is still there with the same expiry."""
        with self._lock:
            self.requests += 1
            counter = self._counter(key)
            if holder not in counter.state.holders:
                return False
            holders = tuple(h for h in counter.state.holders if h != holder)
            counter.state = replace(counter.state, holders=holders)
            return True

    def grant_next(
        self,
        key: SlotKey,
        grant_expiry: dt.datetime,
        now: dt.datetime,  # noqa: ARG002 - part of the port
    ) -> ResumeMessage | None:
        """Hand a unit to the first parked run if there is room.

        Like the DynamoDB store, a read (:meth:`_head`) then a conditional write:
        between them another process may grant the waiter, and its run may even
        park again under the same order key. The write checks the epoch read.
        """
        for _ in range(MAX_GRANT_ROUNDS):
            head = self._head(key)
            if head is None:
                return None
            order, run_id, epoch = head
            with self._lock:
                counter = self._counter(key)
                if counter.waiters.get(order) != (run_id, epoch):
                    continue  # granted or replaced since read: read again
                if not counter.state.has_room:  # taken meanwhile (the counter's condition)
                    return None
                run = self._runs.grant_locked(run_id, epoch)
                if run is None:  # no longer parked at that epoch: drop this waiter only
                    del counter.waiters[order]
                    counter.state = replace(counter.state, waiting=counter.state.waiting - 1)
                    continue
                del counter.waiters[order]
                holders = (*counter.state.holders, Holder(run_id, grant_expiry))
                counter.state = replace(
                    counter.state, holders=holders, waiting=counter.state.waiting - 1
                )
                return ResumeMessage(run.run_id, run.epoch)
        return None

    def _head(self, key: SlotKey) -> tuple[str, str, int] | None:
        """The first waiter ``(order, run id, epoch)`` when the counter has room (the read)."""
        with self._lock:
            self.requests += 2  # a query and a transaction on DynamoDB
            counter = self._counter(key)
            if not counter.state.has_room or not counter.waiters:
                return None
            order = min(counter.waiters)
            return (order, *counter.waiters[order])

    def park_locked(self, park: Park, run_id: str, epoch: int) -> None:
        """Register ``run_id`` as parked at ``epoch``, if the counter is still full (lock held).

        Raises:
            SlotAvailableError: The counter has room again: acquire instead.
        """
        counter = self._counter(park.key)
        state = replace(counter.state, code_limit=park.code_limit)
        if not state.paused and state.has_room and not state.waiting:
            raise SlotAvailableError(f"queue {park.key.id} has room again")
        counter.waiters[waiter_order(park.priority, park.enqueued_at, run_id)] = (run_id, epoch)
        counter.state = replace(state, waiting=state.waiting + 1)

    def release_locked(self, key: SlotKey, run_id: str) -> None:
        """Give back a unit inside a checkpoint (caller holds the lock).

        Raises:
            ReleaseNotFoldedError: Runs are parked on the counter (a hand-off is
                due) or ``run_id`` holds no unit; nothing changed.
        """
        counter = self._counter(key)
        if counter.state.waiting or not counter.state.holds(run_id):
            raise ReleaseNotFoldedError(f"queue {key.id}: release {run_id} apart")
        holders = tuple(h for h in counter.state.holders if h.run_id != run_id)
        counter.state = replace(counter.state, holders=holders)

    def state(self, key: SlotKey) -> QueueState:
        """The counter as stored."""
        with self._lock:
            return self._counter(key).state

    def set_control(
        self,
        key: SlotKey,
        *,
        paused: bool | None = None,
        limit_override: int | None = None,
        clear_override: bool = False,
    ) -> QueueState:
        """Pause, resume or override the limit."""
        validate_limit_override(limit_override)
        with self._lock:
            self.requests += 1
            counter = self._counter(key)
            state = counter.state
            if paused is not None:
                state = replace(state, paused=paused)
            if clear_override:
                state = replace(state, limit_override=None)
            elif limit_override is not None:
                state = replace(state, limit_override=limit_override)
            counter.state = state
            return state

    def keys_with_waiters(self, limit: int = 100) -> list[SlotKey]:
        """Counters with parked runs."""
        with self._lock:
            self.requests += 1
            keys = [key for key, counter in self._counters.items() if counter.waiters]
        return sorted(keys, key=lambda k: k.id)[:limit]

    def waiters(self, key: SlotKey) -> list[str]:
        """Parked run ids in the order they will be granted (for tests)."""
        with self._lock:
            counter = self._counter(key)
            return [counter.waiters[order][0] for order in sorted(counter.waiters)]

    # -- rate limits -----------------------------------------------------------------

    def admit(self, key: str, limit: int, period: float, now: dt.datetime) -> float:
        """Record a start if the sliding window allows it."""
        with self._lock:
            self.requests += 2  # a read and a conditional write on DynamoDB
            decision = rate_decision(self._rates.get(key, ()), limit, period, now.timestamp())
            self._rates[key] = decision.starts
            return decision.retry_in

    # -- cron ------------------------------------------------------------------------

    def last_fired(self, task_id: str) -> dt.datetime | None:
        """The task's last fired occurrence."""
        with self._lock:
            return self._cron.get(task_id)

    def mark_fired(self, task_id: str, previous: dt.datetime | None, fired: dt.datetime) -> bool:
        """Advance the cursor if nobody else did."""
        with self._lock:
            if self._cron.get(task_id) != previous:
                return False
            self._cron[task_id] = fired
            return True
