"""Ports: the narrow interfaces between the runtime and AWS.

Each has a memory implementation (the reference, with the same conditional
semantics) and an AWS one; one contract test suite runs against both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

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
from durable_lambda.engine.slots import AcquireResult, Holder, QueueState, SlotKey
from durable_lambda.engine.tokens import Resolution, TokenInfo
from durable_lambda.engine.transaction import TableWrite

if TYPE_CHECKING:
    from durable_lambda.catalog import CatalogStore


class Clock(Protocol):
    """Time, injectable so tests can skip waits."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake clock just advances)."""
        ...


class BlobStore(Protocol):
    """Content-addressed storage for large values (S3)."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (idempotent: same key, same content).

        A key already there whose object is older than
        :data:`~durable_lambda.values.BLOB_REFRESH_AFTER` has its age reset: blobs
        expire by age, and this reference must not outlive its blob.
        """
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``."""
        ...


class RunStore(Protocol):
    """Runs, journals, timelines and timers (DynamoDB).

    Every write made by an invocation is fenced: it succeeds only while the
    invocation's :class:`Fence` still matches the run, else ``LeaseLostError``.
    """

    def create_run(
        self,
        run: RunRecord,
        idempotency_ttl: dt.timedelta | None = None,
        events: Sequence[TimelineEvent] = (),
    ) -> RunRecord:
        """Create ``run``; with an idempotency key already claimed, return that run instead.

        ``events`` (its TRIGGERED event) are written in the same request as the
        run, and only when the run is created: a trigger costs one write.
        """
        ...

    def create_runs(
        self,
        runs: Sequence[RunRecord],
        events: Sequence[TimelineEvent],
        idempotency_ttl: dt.timedelta | None = None,
    ) -> list[RunRecord]:
        """Create ``runs``, each with its first timeline event, in batched writes.

        As :meth:`create_run` for each (in order): a run whose idempotency key
        is already claimed comes back as the run holding it, and its event is
        not written.
        """
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's metadata, or ``None``."""
        ...

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        """Many runs' metadata in order (``None`` for each missing run), in batched reads."""
        ...

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
        """Take the run for ``owner`` if a message of ``epoch`` may take it now.

        ``counted``: a child's nudge naming its child, which does not take a
        run that keeps a count of its awaited children (see ``lease_outcome``).
        """
        ...

    def note_child_end(self, run_id: str, child_id: str) -> bool:
        """Count child ``child_id``'s end on its parent ``run_id``, once however often told.

        Returns:
            Whether the child's nudge may take the parent now: its children's
            ends leave few enough running that a wait may have ended (see
            ``engine.transitions.child_ended``). ``False`` for no such run.
        """
        ...

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal entries, in position order."""
        ...

    def load_history(self, run_id: str) -> History:
        """The run's journal, with the wait tokens kept beside it, in the same read.

        What a worker resuming the run reads (DynamoDB: the same Query as the
        journal's); tokens whose ids name no run are kept apart and not included.
        """
        ...

    def write_journal(self, run_id: str, entries: Sequence[JournalEntry]) -> None:
        """Write the journal of a run not created yet (a replay's copied history), unfenced.

        Called before the run is created, so no invocation can read a partial
        journal; writes are batched (DynamoDB: 25 items per request), and values
        go where any entry's values go (a large one to its content-addressed blob).
        """
        ...

    def record_entry(
        self, run_id: str, fence: Fence, entry: JournalEntry, metadata: str | None = None
    ) -> None:
        """Write one journal entry in one fenced request (with the run's ``metadata``, if given)."""
        ...

    def record_transaction(
        self,
        run_id: str,
        fence: Fence,
        entry: JournalEntry,
        writes: Sequence[TableWrite],
        metadata: str | None = None,
    ) -> None:
        """Write ``entry`` and a transactional step's ``writes`` in one fenced transaction.

        All or nothing. Raises ``TransactionConditionFailed`` naming the first
        write whose condition failed, and ``LeaseLostError`` as ``record_entry``.
        """
        ...

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> RunRecord:
        """Apply ``checkpoint`` in one fenced request; return the run as it now stands."""
        ...

    def add_events(self, run_id: str, events: Sequence[TimelineEvent]) -> None:
        """Append timeline events (unfenced: events only describe)."""
        ...

    def list_events(self, run_id: str) -> list[TimelineEvent]:
        """The run's timeline, oldest first."""
        ...

    def fail_run(
        self, run_id: str, error: ErrorInfo, event: TimelineEvent, *, epoch: int
    ) -> RunRecord | None:
        """Mark a run FAILED from outside an invocation (a dead-lettered message of ``epoch``).

        Only while the run is still at ``epoch``, not finished, and not RUNNING
        under a lease live at ``event.at``; ``None`` otherwise.
        """
        ...

    def cancel_run(self, run_id: str, at: dt.datetime, detail: str) -> CancelResult:
        """Cancel a run from outside, in one conditional write (``transitions.cancel_action``).

        A run nobody executes (queued, delayed, parked, suspended, or RUNNING
        under a dead lease) ends CANCELED at once, its epoch moved so no message
        takes it again. A run a live invocation holds is flagged instead: from
        then on its fenced writes raise ``CancelRequestedError``, except the
        checkpoint that ends it CANCELED. Either way with its timeline event.

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It has already finished; nothing changed.
        """
        ...

    def note_delivery_error(self, run_id: str, reason: str) -> None:
        """Remember why a message for the run could not be processed."""
        ...

    def add_timer(self, timer: Timer) -> None:
        """Index a wake-up for the scheduler (used for delayed triggers)."""
        ...

    def due_timers(self, until: dt.datetime, limit: int = 100) -> list[Timer]:
        """Timers with ``wake_at <= until``, earliest first."""
        ...

    def delete_timer(self, timer: Timer) -> None:
        """Remove a fired timer (idempotent)."""
        ...

    def expired_leases(self, now: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """RUNNING runs whose lease has expired: their holder died."""
        ...

    def stranded_runs(self, before: dt.datetime, limit: int = 100) -> list[RunRecord]:
        """QUEUED or SUSPENDED runs that were due (wake time, else last update) before ``before``.

        Normally a resume message takes such a run within a second of its due
        time; one still waiting long after lost its message (a crash between
        the checkpoint and the send) and the scheduler sends it again.
        """
        ...

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching ``query``, newest first."""
        ...


class DeadLetter(Protocol):
    """A message read from the dead-letter queue."""

    @property
    def body(self) -> str:
        """The raw body."""
        ...

    @property
    def receive_count(self) -> int:
        """How often SQS delivered it before dead-lettering."""
        ...

    @property
    def receipt_handle(self) -> str:
        """Handle to delete it with."""
        ...


class DeadLetters(Protocol):
    """The worker queue's DLQ, read by the scheduler."""

    def receive(self, max_messages: int = 10) -> Sequence[DeadLetter]:
        """Up to ``max_messages`` dead letters (hidden for a while once read)."""
        ...

    def delete(self, receipt_handle: str) -> None:
        """Remove a handled dead letter."""
        ...


class SlotStore(Protocol):
    """Concurrency counters that know their holders, and the runs parked on them.

    Every operation is one conditional request (``grant_next`` a query and one
    transaction), so a duplicate acquire or release changes nothing and the
    count can never go negative or count a run twice.
    """

    def acquire(
        self,
        key: SlotKey,
        run_id: str,
        expiry: dt.datetime,
        code_limit: int | None,
    ) -> AcquireResult:
        """Take a unit for ``run_id`` until ``expiry``.

        A run that already holds a unit gets HELD (its expiry is extended).
        A new holder needs room and nobody parked ahead (FIFO fairness).
        """
        ...

    def release(self, key: SlotKey, run_id: str) -> QueueState | None:
        """Give back ``run_id``'s unit; ``None`` when it held none (a duplicate release)."""
        ...

    def reap(self, key: SlotKey, holder: Holder) -> bool:
        """Remove a holder whose expiry passed (only if unchanged since read)."""
        ...

    def grant_next(
        self, key: SlotKey, grant_expiry: dt.datetime, now: dt.datetime
    ) -> ResumeMessage | None:
        """Hand a unit to the first parked run, if there is room; its resume message to send."""
        ...

    def state(self, key: SlotKey) -> QueueState:
        """The counter as stored (empty when never used)."""
        ...

    def set_control(
        self,
        key: SlotKey,
        *,
        paused: bool | None = None,
        limit_override: int | None = None,
        clear_override: bool = False,
    ) -> QueueState:
        """Pause or resume the queue, or override its limit (``clear_override`` drops it)."""
        ...

    def keys_with_waiters(self, limit: int = 100) -> list[SlotKey]:
        """Counters with parked runs (the scheduler's fallback for lost wake-ups)."""
        ...


class RateStore(Protocol):
    """Sliding-window start logs for rate limits."""

    def admit(self, key: str, limit: int, period: float, now: dt.datetime) -> float:
        """Record a start if the window allows; else the seconds until it will (0 = admitted)."""
        ...


class ScheduleStore(Protocol):
    """Where each cron task's last fired occurrence is kept."""

    def last_fired(self, task_id: str) -> dt.datetime | None:
        """The last occurrence fired, or ``None``."""
        ...

    def mark_fired(self, task_id: str, previous: dt.datetime | None, fired: dt.datetime) -> bool:
        """Move the cursor from ``previous`` to ``fired``; False if another scheduler moved it."""
        ...


class FlowStore(SlotStore, RateStore, ScheduleStore, Protocol):
    """All flow-control state (one DynamoDB table, or memory)."""


class TokenStore(Protocol):
    """Wait tokens (``TOKEN#id`` items): each resolved once, by one conditional write.

    Completion data follows the value rules of step results: inline up to the
    inline limit, in the blob store beyond, refused above the maximum with
    ``PayloadTooLarge`` before anything is written.
    """

    def create(self, token: TokenInfo) -> TokenInfo:
        """Create ``token`` unless its id exists; the token as stored either way.

        An existing token that is still pending gains ``token``'s secret
        hashes (a create re-executed after a crash minted a new callback
        secret; the first may already be in a webhook's hands).
        """
        ...

    def get(self, token_id: str) -> TokenInfo | None:
        """The token, or ``None``."""
        ...

    def resolve(self, token_id: str, resolution: Resolution, now: dt.datetime) -> TokenInfo:
        """Resolve a pending token as ``resolution`` says; the token as it now stands.

        Raises:
            TokenNotFoundError: No such token.
            TokenAlreadyResolvedError: It was resolved before (nothing changes).
            PayloadTooLarge: The data is above the maximum value size.
        """
        ...

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        """Resolve ``token`` TIMED_OUT while it is pending and past a deadline at ``now``.

        Returns the token as it now stands: timed out by this call, resolved
        by a completion that won the race, or still pending (a heartbeat
        moved its deadline).
        """
        ...

    def heartbeat(self, token_id: str, now: dt.datetime) -> TokenInfo:
        """Record a heartbeat at ``now`` (its heartbeat deadline moves out); the token.

        Raises:
            TokenNotFoundError: No such token.
            TokenAlreadyResolvedError: It is resolved already.
        """
        ...


class ResumeQueue(Protocol):
    """The queue that re-invokes the worker (SQS)."""

    def send(self, message: ResumeMessage, delay_seconds: int = 0) -> None:
        """Send ``message``, delivered after ``delay_seconds`` (0..900)."""
        ...

    def send_batch(self, messages: Sequence[ResumeMessage], delay_seconds: int = 0) -> None:
        """Send ``messages`` alike, in as few requests as the queue allows (SQS: 10 each)."""
        ...


@dataclass(frozen=True, slots=True)
class Ports:
    """One backend's ports: what ``services.build_services`` wires the services to.

    Built by ``adapters.memory.memory_ports`` and ``adapters.aws.aws_ports``.

    Attributes:
        store: Runs, journals, timelines and timers.
        flow: Concurrency counters, parked runs, rate windows and cron cursors.
        queue: The resume queue.
        blobs: Large values (the store writes them through its value store).
        clock: Now, for every service.
        dead_letters: The resume queue's dead letters, when there is such a queue.
        tokens: Wait tokens, when the backend has them.
        catalog: The task catalog (descriptions published at start, read to trigger by id).
    """

    store: RunStore
    flow: FlowStore
    queue: ResumeQueue
    blobs: BlobStore
    clock: Clock
    dead_letters: DeadLetters | None = None
    tokens: TokenStore | None = None
    catalog: CatalogStore | None = None
