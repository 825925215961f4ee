"""A run store that reads through and refuses every write: for checks that must change nothing.

The replay check (``durable_lambda.replay_check``) reads runs, journals and
child runs through it; a write that reaches it, whatever the path, raises
:class:`ReadOnlyStoreError` naming the method instead of touching a run.
"""

# ruff: noqa: ARG002 - a refused write keeps the RunStore signature and ignores its arguments

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from durable_lambda.engine.history import History
from durable_lambda.engine.journal import ErrorInfo, JournalEntry
from durable_lambda.engine.records import (
    CancelResult,
    Checkpoint,
    Fence,
    LeaseResult,
    RunQuery,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.transaction import TableWrite
from durable_lambda.errors import DurableLambdaError
from durable_lambda.ports import RunStore


class ReadOnlyStoreError(DurableLambdaError):
    """A write reached a read-only store."""


class ReadOnlyRunStore:
    """A :class:`RunStore` that reads through to ``store`` and refuses every write.

    Each write raises :class:`ReadOnlyStoreError` naming the method, so a check
    that tried to change a run fails loudly instead.
    """

    def __init__(self, store: RunStore) -> None:
        """Wrap ``store``."""
        self.store = store

    @staticmethod
    def _refuse(method: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(f"the store is read-only: RunStore.{method} was called")

    # -- reads --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        """Read through."""
        return self.store.get_run(run_id)

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        """Read through."""
        return self.store.get_runs(run_ids)

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        """Read through."""
        return self.store.load_journal(run_id)

    def load_history(self, run_id: str) -> History:
        """Read through."""
        return self.store.load_history(run_id)

    def list_events(self, run_id: str) -> list[TimelineEvent]:
        """Read through."""
        return self.store.list_events(run_id)

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Read through."""
        return self.store.list_runs(query)

    def due_timers(self, until: dt.datetime, limit: int = 100) -> list[Timer]:
        """Read through."""
        return self.store.due_timers(until, limit)

    def expired_leases(self, now: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """Read through."""
        return self.store.expired_leases(now, limit)

    def stranded_runs(self, before: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """Read through."""
        return self.store.stranded_runs(before, limit)

    # -- writes: refused ----------------------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        idempotency_ttl: dt.timedelta | None = None,
        events: Sequence[TimelineEvent] = (),
    ) -> RunRecord:
        """Refused."""
        raise self._refuse("create_run")

    def create_runs(
        self,
        runs: Sequence[RunRecord],
        events: Sequence[TimelineEvent],
        idempotency_ttl: dt.timedelta | None = None,
    ) -> list[RunRecord]:
        """Refused."""
        raise self._refuse("create_runs")

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
        """Refused."""
        raise self._refuse("take_lease")

    def note_child_end(self, run_id: str, child_id: str) -> bool:
        """Refused."""
        raise self._refuse("note_child_end")

    def record_transaction(
        self,
        run_id: str,
        fence: Fence,
        entry: JournalEntry,
        writes: Sequence[TableWrite],
        metadata: str | None = None,
    ) -> None:
        """Refused."""
        raise self._refuse("record_transaction")

    def record_entry(
        self, run_id: str, fence: Fence, entry: JournalEntry, metadata: str | None = None
    ) -> None:
        """Refused."""
        raise self._refuse("record_entry")

    def write_journal(self, run_id: str, entries: Sequence[JournalEntry]) -> None:
        """Refused."""
        raise self._refuse("write_journal")

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        """Refused."""
        raise self._refuse("checkpoint")

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """Refused."""
        raise self._refuse("add_events")

    def fail_run(
        self, run_id: str, error: ErrorInfo, event: TimelineEvent, *, epoch: int
    ) -> RunRecord | None:
        """Refused."""
        raise self._refuse("fail_run")

    def cancel_run(self, run_id: str, at: dt.datetime, detail: str) -> CancelResult:
        """Refused."""
        raise self._refuse("cancel_run")

    def note_delivery_error(self, run_id: str, reason: str) -> None:
        """Refused."""
        raise self._refuse("note_delivery_error")

    def add_timer(self, timer: Timer) -> None:
        """Refused."""
        raise self._refuse("add_timer")

    def delete_timer(self, timer: Timer) -> None:
        """Refused."""
        raise self._refuse("delete_timer")
