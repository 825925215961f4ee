"""The simulated Lambda deadline of :class:`~durable_lambda.testing.LocalRunner`.

Lambda kills an invocation at its deadline, whatever it is doing: whatever
the invocation had not yet written is lost. The runner cannot stop a running
step body, but it can refuse the body's next write: every fenced write of an
invocation (a journal entry, the checkpoint) attempted after its deadline
raises :class:`InvocationKilled` instead of reaching the store.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from durable_lambda.engine.history import History
from durable_lambda.engine.journal import ErrorInfo, JournalEntry
from durable_lambda.engine.records import (
    CancelResult,
    Checkpoint,
    Fence,
    LeaseResult,
    ResumeMessage,
    RunQuery,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.transaction import TableWrite
from durable_lambda.messages import encode_message
from durable_lambda.ports import DeadLetter, RunStore


class InvocationKilled(BaseException):
    """Internal: the simulated invocation ran past its deadline and is dead.

    A ``BaseException`` so neither user code (``except Exception``) nor the
    engine can catch it and carry on as if the invocation were alive.

    Attributes:
        what: What was running when time ran out (``"step 'slow#0'"``).
        overrun: Seconds past the deadline at the refused write.
    """

    def __init__(self, what: str, overrun: float) -> None:
        self.what = what
        self.overrun = overrun
        super().__init__(f"{what} ran {overrun:.3f} s past the invocation's deadline")


class DeadlineStore:
    """A :class:`~durable_lambda.ports.RunStore` whose fenced writes die with the invocation.

    Between :meth:`arm` and :meth:`disarm` (one simulated invocation),
    ``record_entry`` and ``checkpoint`` raise :class:`InvocationKilled` once
    no time remains, storing nothing. Everything else passes through.
    """

    def __init__(self, inner: RunStore) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self._remaining: Callable[[], float] | None = None

    def arm(self, remaining: Callable[[], float]) -> None:
        """Hold the writes from now on to an invocation with ``remaining()`` seconds left."""
        self._remaining = remaining

    def disarm(self) -> None:
        """The invocation is over: writes pass freely again."""
        self._remaining = None

    def _overrun(self) -> float | None:
        """Seconds past the deadline, or ``None`` while time remains (or when disarmed)."""
        left = self._remaining() if self._remaining is not None else 0.0
        return -left if left < 0 else None

    # -- the fenced writes -----------------------------------------------------------------

    def record_entry(
        self, run_id: str, fence: Fence, entry: JournalEntry, metadata: str | None = None
    ) -> None:
        """Record ``entry`` unless the invocation is past its deadline."""
        overrun = self._overrun()
        if overrun is not None:
            raise InvocationKilled(f"step {entry.key!r}", overrun)
        if metadata is None:
            self.inner.record_entry(run_id, fence, entry)
        else:
            self.inner.record_entry(run_id, fence, entry, metadata)

    def record_transaction(
        self,
        run_id: str,
        fence: Fence,
        entry: JournalEntry,
        writes: Sequence[TableWrite],
        metadata: str | None = None,
    ) -> None:
        """Record ``entry`` with its ``writes`` unless the invocation is past its deadline."""
        overrun = self._overrun()
        if overrun is not None:
            raise InvocationKilled(f"step {entry.key!r}", overrun)
        self.inner.record_transaction(run_id, fence, entry, writes, metadata)

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        """Write ``checkpoint`` unless the invocation is past its deadline."""
        overrun = self._overrun()
        if overrun is not None:
            # Only read on a kill, so request counts of live invocations stay exact.
            run = self.inner.get_run(run_id)
            what = f"task {run.task_id!r}" if run is not None else f"run {run_id!r}"
            raise InvocationKilled(what, overrun)
        return self.inner.checkpoint(run_id, fence, checkpoint)

    # -- everything else passes through -----------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        idempotency_ttl: dt.timedelta | None = None,
        events: Sequence[TimelineEvent] = (),
    ) -> RunRecord:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.create_run(run, idempotency_ttl, events)

    def get_run(self, run_id: str) -> RunRecord | None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.get_run(run_id)

    def write_journal(self, run_id: str, entries: Sequence[JournalEntry]) -> None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        self.inner.write_journal(run_id, entries)

    def create_runs(
        self,
        runs: Sequence[RunRecord],
        events: Sequence[TimelineEvent],
        idempotency_ttl: dt.timedelta | None = None,
    ) -> list[RunRecord]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.create_runs(runs, events, idempotency_ttl)

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.get_runs(run_ids)

    def take_lease(
        self,
        run_id: str,
        epoch: int,
        owner: str,
        expiry: dt.datetime,
        now: dt.datetime,
        *,
        counted: bool = False,
    ) -> LeaseResult:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.take_lease(run_id, epoch, owner, expiry, now, counted=counted)

    def note_child_end(self, run_id: str, child_id: str) -> bool:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.note_child_end(run_id, child_id)

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.load_journal(run_id)

    def load_history(self, run_id: str) -> History:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.load_history(run_id)

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        self.inner.add_events(run_id, events)

    def list_events(self, run_id: str) -> list[TimelineEvent]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.list_events(run_id)

    def fail_run(
        self, run_id: str, error: ErrorInfo, event: TimelineEvent, *, epoch: int
    ) -> RunRecord | None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.fail_run(run_id, error, event, epoch=epoch)

    def cancel_run(self, run_id: str, at: dt.datetime, detail: str) -> CancelResult:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.cancel_run(run_id, at, detail)

    def note_delivery_error(self, run_id: str, reason: str) -> None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        self.inner.note_delivery_error(run_id, reason)

    def add_timer(self, timer: Timer) -> None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        self.inner.add_timer(timer)

    def due_timers(self, until: dt.datetime, limit: int = 100) -> list[Timer]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.due_timers(until, limit)

    def delete_timer(self, timer: Timer) -> None:
        """See :class:`~durable_lambda.ports.RunStore`."""
        self.inner.delete_timer(timer)

    def expired_leases(self, now: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.expired_leases(now, limit)

    def stranded_runs(self, before: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.stranded_runs(before, limit)

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """See :class:`~durable_lambda.ports.RunStore`."""
        return self.inner.list_runs(query)


@dataclass(frozen=True, slots=True)
class _Letter:
    body: str
    receive_count: int
    receipt_handle: str


class DeadLetterBox:
    """An in-memory DLQ the runner moves messages to after ``max_receive_count`` kills."""

    def __init__(self) -> None:
        """Start empty."""
        self._letters: dict[str, _Letter] = {}
        self._handles = itertools.count(1)

    def put(self, message: ResumeMessage, receive_count: int) -> None:
        """Dead-letter ``message`` after ``receive_count`` deliveries."""
        handle = f"dlq-{next(self._handles)}"
        self._letters[handle] = _Letter(encode_message(message), receive_count, handle)

    def receive(self, max_messages: int = 10) -> Sequence[DeadLetter]:
        """Up to ``max_messages`` letters not yet deleted."""
        return list(self._letters.values())[:max_messages]

    def delete(self, receipt_handle: str) -> None:
        """Drop a handled letter."""
        self._letters.pop(receipt_handle, None)
