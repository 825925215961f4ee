"""The run store in memory: runs, journals, timelines and timers behind one lock.

It is the executable specification the DynamoDB run store is tested against
(one contract suite runs on both), and the backend of ``LocalRunner``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from durable_lambda.adapters.memory.flow import MemoryFlowStore
from durable_lambda.adapters.memory.tables import MemoryTables
from durable_lambda.adapters.memory.tokens import MemoryTokenStore
from durable_lambda.engine.frozen import frozen_record
from durable_lambda.engine.history import History
from durable_lambda.engine.journal import EntryStatus, ErrorInfo, JournalEntry
from durable_lambda.engine.records import (
    CancelAction,
    CancelResult,
    Checkpoint,
    Fence,
    LeaseOutcome,
    LeaseResult,
    RunQuery,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.transaction import TableWrite
from durable_lambda.engine.transitions import (
    apply_checkpoint,
    cancel_action,
    cancel_event,
    canceled,
    child_ended,
    failable,
    lease_outcome,
    with_metadata,
)
from durable_lambda.errors import (
    CancelRequestedError,
    LeaseLostError,
    RunExistsError,
    RunFinishedError,
    RunNotFoundError,
)
from durable_lambda.values import StoredValue, ValueStore

#: Journal statuses no later write may overwrite (RETRYING, WAITING and STARTED may be).
FINAL_ENTRY_STATUSES = frozenset({EntryStatus.COMPLETED, EntryStatus.FAILED})


@dataclass(slots=True)
class _Stored:
    run: RunRecord
    payload: StoredValue
    output: StoredValue | None = None
    error: StoredValue | None = None


@frozen_record
class _StoredEntry:
    entry: JournalEntry  # without its result and error, which are stored values
    result: StoredValue | None
    error: StoredValue | None


class MemoryRunStore:
    """Runs, journals, timelines and timers in dicts, behind one lock."""

    def __init__(self, values: ValueStore) -> None:
        """Store values through ``values`` (same inline/blob rules as DynamoDB)."""
        self.values = values
        self._lock = threading.Lock()
        self._runs: dict[str, _Stored] = {}
        self._journals: dict[str, dict[int, _StoredEntry]] = {}
        self._events: dict[str, list[TimelineEvent]] = {}
        self._idempotency: dict[tuple[str, str], tuple[str, dt.datetime | None]] = {}
        self._timers: dict[tuple[str, int, dt.datetime], Timer] = {}
        self.write_requests = 0
        self.flow = MemoryFlowStore(self, self._lock)
        #: Users' own tables, which transactional steps write with their records.
        self.tables = MemoryTables(self._lock)
        #: Wait tokens, kept beside the runs as DynamoDB keeps them in the runs' table.
        self.tokens = MemoryTokenStore(values)

    # -- runs ------------------------------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        idempotency_ttl: dt.timedelta | None = None,
        events: Sequence[TimelineEvent] = (),
    ) -> RunRecord:
        """Create ``run`` (with ``events``) or return the run its idempotency key already names."""
        payload = self.values.store("payload", run.payload)
        output, error = self._second_values(run.output, run.error)
        with self._lock:
            self.write_requests += 1
            claim_key: tuple[str, str] | None = None
            if run.idempotency_key is not None:
                claim_key = (run.task_id, run.idempotency_key)
                claim = self._idempotency.get(claim_key)
                # A claim whose run is gone (deleted after retention) is as good as expired.
                if (
                    claim is not None
                    and claim[0] in self._runs
                    and (claim[1] is None or claim[1] > run.created_at)
                ):
                    return self._hydrate(self._runs[claim[0]])
            # Check before claiming: a failed create must not leave a claim behind.
            if run.run_id in self._runs:
                raise RunExistsError(run.run_id)
            if claim_key is not None:
                expiry = run.created_at + idempotency_ttl if idempotency_ttl else None
                self._idempotency[claim_key] = (run.run_id, expiry)
            self._runs[run.run_id] = _Stored(
                run=replace(run, payload="", output=None, error=None),
                payload=payload,
                output=output,
                error=error,
            )
            # A replay's copied journal was written before its run: keep it.
            self._journals.setdefault(run.run_id, {})
            self._events[run.run_id] = list(events)
            return run

    def create_runs(
        self,
        runs: Sequence[RunRecord],
        events: Sequence[TimelineEvent],
        idempotency_ttl: dt.timedelta | None = None,
    ) -> list[RunRecord]:
        """Create each run and its first event (see :meth:`create_run`)."""
        stored = []
        for run, event in zip(runs, events, strict=True):
            got = self.create_run(run, idempotency_ttl)
            if got.run_id == run.run_id:
                self.add_events(run.run_id, [event])
            stored.append(got)
        return stored

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""
        with self._lock:
            stored = self._runs.get(run_id)
            return self._hydrate(stored) if stored else None

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        """The runs in order, ``None`` for each missing one."""
        with self._lock:
            return [self._hydrate(self._runs[r]) if r in self._runs else None for r in run_ids]

    def _hydrate(self, stored: _Stored) -> RunRecord:
        output = self.values.load(stored.output) if stored.output else None
        error = self.values.load_error(stored.error) if stored.error else None
        payload = self.values.load(stored.payload)
        return replace(stored.run, payload=payload, output=output, error=error)

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
        """Take the run if the message may (see :func:`lease_outcome`)."""
        with self._lock:
            self.write_requests += 1
            stored = self._runs.get(run_id)
            if stored is None:
                return LeaseResult(LeaseOutcome.NOT_FOUND)
            outcome = lease_outcome(stored.run, epoch, now, counted=counted)
            if outcome is LeaseOutcome.TAKEN:
                stored.run = replace(
                    stored.run,
                    status=RunStatus.RUNNING,
                    lease_owner=owner,
                    lease_expiry=expiry,
                    invocations=stored.run.invocations + 1,
                    updated_at=now,
                    waiting_children=False,
                    awaited_children=frozenset(),
                    awaited_wake=None,
                )
            return LeaseResult(outcome, self._hydrate(stored))

    def note_child_end(self, run_id: str, child_id: str) -> bool:
        """Count ``child_id``'s end on its parent ``run_id`` (see :func:`child_ended`).

        Returns:
            Whether the child's nudge may take the parent now (``False`` for no such run).
        """
        with self._lock:
            stored = self._runs.get(run_id)
            if stored is None:
                return False
            self.write_requests += 1  # one conditional update, as on DynamoDB
            stored.run, wakes = child_ended(stored.run, child_id)
            return wakes

    def _fenced(self, run_id: str, fence: Fence, *, canceling: bool = False) -> _Stored:
        stored = self._runs.get(run_id)
        if stored is None:
            raise RunNotFoundError(run_id)
        run = stored.run
        if run.lease_owner != fence.owner or run.epoch != fence.epoch:
            raise LeaseLostError(
                f"run {run_id} is held by {run.lease_owner!r} at epoch {run.epoch}, "
                f"not {fence.owner!r} at epoch {fence.epoch}"
            )
        if run.cancel_requested and not canceling:
            raise CancelRequestedError(f"run {run_id}: a cancel was requested")
        return stored

    def cancel_run(self, run_id: str, at: dt.datetime, detail: str) -> CancelResult:
        """Cancel the run at ``at`` as ``cancel_action`` says (see ``ports.RunStore``)."""
        with self._lock:
            self.write_requests += 1
            stored = self._runs.get(run_id)
            if stored is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            previous = stored.run
            action = cancel_action(previous, at)
            if action is CancelAction.FINISHED:
                raise RunFinishedError(run_id, previous.status.value)
            if action is CancelAction.REQUEST:
                stored.run = replace(previous, cancel_requested=True)
            else:
                done = canceled(previous, at, detail)
                stored.run = replace(done, error=None)
                stored.error = self.values.store_error("error", done.error or ErrorInfo("", ""))
            self._events[run_id].append(cancel_event(action, at, detail))
            return CancelResult(action, self._hydrate(stored), previous.status)

    # -- journal ---------------------------------------------------------------------

    def _check_writable(self, run_id: str, entry: JournalEntry) -> None:
        existing = self._journals[run_id].get(entry.seq)
        if existing is not None and existing.entry.status in FINAL_ENTRY_STATUSES:
            raise LeaseLostError(f"run {run_id}: journal position {entry.seq} is already final")

    def _stored_entry(self, entry: JournalEntry) -> _StoredEntry:
        result, error = self.values.store_entry(entry)
        # The entry keeps its own copy of the values (no copy of the entry made per
        # write); reads answer with the stored forms, as DynamoDB's adapter does.
        return _StoredEntry(entry, result, error)

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The journal in position order, large results fetched from blobs."""
        with self._lock:
            journal = dict(self._journals.get(run_id, {}))
        return [
            replace(
                stored.entry,
                result=self.values.load(stored.result) if stored.result else None,
                error=self.values.load_error(stored.error) if stored.error else None,
            )
            for _, stored in sorted(journal.items())
        ]

    def load_history(self, run_id: str) -> History:
        """The journal and the run's tokens (those whose ids name it), as DynamoDB's one Query."""
        return History(self.load_journal(run_id), self.tokens.of_run(run_id))

    def write_journal(self, run_id: str, entries: Sequence[JournalEntry]) -> None:
        """Write the journal of a run not created yet (a replay's copied history)."""
        stored = [self._stored_entry(entry) for entry in entries]
        with self._lock:
            self.write_requests += -(-len(stored) // 25)  # as DynamoDB's batches would
            journal = self._journals.setdefault(run_id, {})
            for entry, item in zip(entries, stored, strict=True):
                journal[entry.seq] = item

    def record_entry(
        self, run_id: str, fence: Fence, entry: JournalEntry, metadata: str | None = None
    ) -> None:
        """Write one entry (and the run's ``metadata`` document, if given) if ``fence`` holds."""
        with self._lock:
            self.write_requests += 1
            stored = self._fenced(run_id, fence)
            self._check_writable(run_id, entry)
            self._journals[run_id][entry.seq] = self._stored_entry(entry)
            if metadata is not None:
                stored.run = with_metadata(stored.run, metadata)

    def record_transaction(
        self,
        run_id: str,
        fence: Fence,
        entry: JournalEntry,
        writes: Sequence[TableWrite],
        metadata: str | None = None,
    ) -> None:
        """Write ``entry`` and apply ``writes`` to :attr:`tables` together, if ``fence`` holds.

        All or nothing: a lost fence, a final entry or a failed condition
        (``TransactionConditionFailed``) changes nothing.
        """
        with self._lock:
            self.write_requests += 1
            stored = self._fenced(run_id, fence)
            self._check_writable(run_id, entry)
            recorded = self._stored_entry(entry)
            self.tables.apply_locked(writes)
            self._journals[run_id][entry.seq] = recorded
            if metadata is not None:
                stored.run = with_metadata(stored.run, metadata)

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        """Apply a checkpoint if ``fence`` still holds (all of it, or nothing)."""
        output, error = self._second_values(checkpoint.output, checkpoint.error)
        with self._lock:
            self.write_requests += 1
            canceling = checkpoint.status is RunStatus.CANCELED
            stored = self._fenced(run_id, fence, canceling=canceling)
            for entry in checkpoint.entries:
                self._check_writable(run_id, entry)
            # Values first: a value above the maximum must leave nothing half-written.
            entries = [self._stored_entry(entry) for entry in checkpoint.entries]
            if checkpoint.park is not None:  # may refuse: nothing written yet
                epoch = stored.run.epoch + 1 if checkpoint.new_epoch else stored.run.epoch
                self.flow.park_locked(checkpoint.park, run_id, epoch)
            if checkpoint.release is not None:
                self.flow.release_locked(checkpoint.release, run_id)  # likewise
            for entry, stored_entry in zip(checkpoint.entries, entries, strict=True):
                self._journals[run_id][entry.seq] = stored_entry
            self._events[run_id].extend(checkpoint.events)
            stored.run = replace(apply_checkpoint(stored.run, checkpoint), output=None, error=None)
            if output is not None:
                stored.output = output
            if error is not None:
                stored.error = error
            if checkpoint.timer and checkpoint.wake_at is not None:
                timer = Timer(run_id, stored.run.epoch, checkpoint.wake_at)
                self._timers[(run_id, timer.epoch, timer.wake_at)] = timer
            if checkpoint.park is not None and checkpoint.park.expires_at is not None:
                timer = Timer(run_id, stored.run.epoch, checkpoint.park.expires_at)
                self._timers[(run_id, timer.epoch, timer.wake_at)] = timer
            return self._hydrate(stored)

    def _second_values(
        self, output: str | None, error: ErrorInfo | None
    ) -> tuple[StoredValue | None, StoredValue | None]:
        """An output and an error as stored: routed as the DynamoDB store routes them."""
        return (
            self.values.secondary.store("output", output) if output is not None else None,
            self.values.store_error("error", error) if error is not None else None,
        )

    def grant_locked(self, run_id: str, epoch: int) -> RunRecord | None:
        """A run parked at ``epoch`` was handed a unit: it may be taken again (lock held).

        ``None`` when the run is no longer parked at that epoch (canceled, failed,
        expired, deleted, or taken and parked again): its waiter is stale and must
        not take the unit.
        """
        stored = self._runs.get(run_id)
        if (
            stored is None
            or stored.run.status is not RunStatus.WAITING_FOR_SLOT
            or stored.run.epoch != epoch
        ):
            return None
        stored.run = replace(stored.run, status=RunStatus.QUEUED, wake_at=None)
        return stored.run

    # -- timeline --------------------------------------------------------------------

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """Append events."""
        with self._lock:
            self.write_requests += 1
            self._events.setdefault(run_id, []).extend(events)

    def list_events(self, run_id: str) -> list[TimelineEvent]:
        """The timeline, oldest first."""
        with self._lock:
            return sorted(self._events.get(run_id, []), key=lambda e: e.at)

    def fail_run(
        self, run_id: str, error: ErrorInfo, event: TimelineEvent, *, epoch: int
    ) -> RunRecord | None:
        """Mark FAILED a run still at ``epoch``, not finished and not held by a live invocation."""
        stored_error = self.values.store_error("error", error)
        with self._lock:
            self.write_requests += 1
            stored = self._runs.get(run_id)
            if stored is None or not failable(stored.run, epoch, event.at):
                return None
            stored.run = replace(
                stored.run,
                status=RunStatus.FAILED,
                lease_owner=None,
                lease_expiry=None,
                epoch=stored.run.epoch + 1,
                updated_at=event.at,
                finished_at=event.at,
            )
            stored.error = stored_error
            self._events[run_id].append(event)
            return self._hydrate(stored)

    def note_delivery_error(self, run_id: str, reason: str) -> None:
        """Remember the last delivery error."""
        with self._lock:
            stored = self._runs.get(run_id)
            if stored is not None:
                stored.run = replace(stored.run, last_delivery_error=reason)

    # -- timers and recovery ---------------------------------------------------------

    def add_timer(self, timer: Timer) -> None:
        """Index a wake-up."""
        with self._lock:
            self.write_requests += 1
            self._timers[(timer.run_id, timer.epoch, timer.wake_at)] = timer

    def due_timers(self, until: dt.datetime, limit: int = 100) -> list[Timer]:
        """Timers due by ``until``, earliest first."""
        with self._lock:
            due = [t for t in self._timers.values() if t.wake_at <= until]
        return sorted(due, key=lambda t: (t.wake_at, t.run_id))[:limit]

    def delete_timer(self, timer: Timer) -> None:
        """Forget a fired timer."""
        with self._lock:
            self._timers.pop((timer.run_id, timer.epoch, timer.wake_at), None)

    def expired_leases(self, now: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """RUNNING runs whose lease expired."""
        with self._lock:
            runs = [
                self._hydrate(s)
                for s in self._runs.values()
                if s.run.status is RunStatus.RUNNING
                and s.run.lease_expiry is not None
                and s.run.lease_expiry <= now
            ]
        return runs[:limit]

    def stranded_runs(self, before: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """QUEUED or SUSPENDED runs due (wake time, else last update) before ``before``."""
        with self._lock:
            runs = [
                self._hydrate(s)
                for s in self._runs.values()
                if s.run.status in {RunStatus.QUEUED, RunStatus.SUSPENDED}
                and (s.run.wake_at or s.run.updated_at) < before
            ]
        return sorted(runs, key=lambda r: r.wake_at or r.updated_at)[:limit]

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs newest first, filtered."""
        with self._lock:
            runs = [self._hydrate(s) for s in self._runs.values() if query.matches(s.run)]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return runs[: query.limit]
