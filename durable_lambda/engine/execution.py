"""One invocation of a run: replay the journal, execute new calls, decide the outcome. Pure.

The task function runs from the top on every invocation. Each step or wait
call asks the :class:`Execution` bound to the current context; calls that
the journal already holds return at once, new ones execute and are recorded
through the ``record`` callable before the task goes on.

Stopping is a ``BaseException`` signal raised where the task awaits. Once a
signal is raised the invocation is over: no new step body starts, every body
already running finishes and records, and whatever the task body does with
the signal afterwards cannot turn the invocation into a completed run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from durable_lambda import serde
from durable_lambda.engine.calls import (
    WAIT_NAME,
    StepCall,
    StepInfo,
    StepSpec,
    checked_value,
    current_step,
    enter_step,
    entry_of,
    error_of,
    in_step_body,
    is_async,
    leave_step,
    replayed_failure,
    step_context,
)
from durable_lambda.engine.environment import Environment
from durable_lambda.engine.invocation_end import InvocationEnd
from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, Journal, JournalEntry
from durable_lambda.engine.lease import must_suspend
from durable_lambda.engine.observer import AttemptStatus
from durable_lambda.engine.outcome import (
    Outcome,
    SuspendReason,
)
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.engine.scopes import ScopeNumbering, current_scope, within
from durable_lambda.engine.signals import (
    AbandonSignal,
    CancelSignal,
    StoreFailedSignal,
    SuspendSignal,
    quiet_signals,
    retrieve,
)
from durable_lambda.engine.suspension import SuspendRequest
from durable_lambda.engine.transaction import TableWrite, unwrap
from durable_lambda.errors import (
    AbortRun,
    CancelRequestedError,
    LeaseLostError,
    PayloadTooLarge,
    SerializationError,
    StepFailedError,
    StepInterruptedError,
    SuspendSwallowedError,
    TransactionConditionFailed,
)

__all__ = [
    "WAIT_NAME",
    "Environment",
    "Execution",
    "StepInfo",
    "StepSpec",
    "current_execution",
    "current_step",
]

_current: ContextVar[Execution | None] = ContextVar("durable_lambda_execution", default=None)

#: What a step body most often returns: never awaitable, so no ``inspect`` (and
#: its ABC check) is asked of it.
_NEVER_AWAITABLE = frozenset({int, str, float, bool, type(None), dict, list, tuple})


def current_execution() -> Execution | None:
    """The execution driving the current task, or ``None`` outside a task."""
    return _current.get()


@dataclass(slots=True)
class Execution(InvocationEnd):
    """Drives one invocation of one run.

    Attributes:
        run_id: The run.
        attempt: The run's attempt (1-based); a task-level retry increments it.
        journal: The journal loaded for this invocation.
        env: The outside world.
        task_retry: The task's retry policy, also the default for its steps.
    """

    run_id: str
    attempt: int
    journal: Journal
    env: Environment
    task_retry: RetryPolicy
    steps_executed: int = 0
    steps_replayed: int = 0
    abandoned: str | None = None
    store_error: Exception | None = None
    canceled: str | None = None
    _pending: list[JournalEntry] = field(default_factory=list)
    _suspends: list[SuspendRequest] = field(default_factory=list)
    _inflight: int = 0
    _idle: asyncio.Event | None = None

    # -- calls from the task ---------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether a stop signal was raised: no new step body may start."""
        return (
            bool(self._suspends)
            or self.abandoned is not None
            or self.store_error is not None
            or self.canceled is not None
        )

    async def call_step(
        self,
        spec: StepSpec,
        fn: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a step once per run: replay its record, or execute and record it."""
        call = self.journal.next_call(current_scope(), spec.name, EntryKind.STEP)
        recorded = call.recorded
        attempt = 1
        if recorded is not None:
            if recorded.status is EntryStatus.COMPLETED:
                self.steps_replayed += 1
                return serde.decode(recorded.result or "null", spec.result_type)
            if recorded.status is EntryStatus.FAILED:
                self.steps_replayed += 1
                raise replayed_failure(recorded)
            # RETRYING: the next attempt, once its backoff has passed. STARTED:
            # the attempt an at_most_once body was in when its invocation died.
            attempt = recorded.attempts + (recorded.status is not EntryStatus.STARTED)
            if recorded.wake_at is not None and recorded.wake_at > self.env.now():
                self._suspend(SuspendReason.STEP_RETRY, recorded.wake_at, recorded.key)
        step_call = StepCall(spec, call, attempt)
        if self.stopping:
            # Another scope already stopped this invocation: start nothing new.
            self._stop_again()
        if recorded is not None and recorded.status is EntryStatus.STARTED:
            failure = StepInterruptedError(step_call.key, attempt)
            return self._step_failed(step_call, recorded.started_at or self.env.now(), failure)
        # A fresh invocation always makes progress, or a step that can never
        # fit its expected duration would chain invocations forever.
        if self.steps_executed and must_suspend(
            self.env.remaining(), self.env.safety_margin, spec.expected_duration
        ):
            self._suspend(SuspendReason.DEADLINE, None, f"before {step_call.key}")
        self._inflight += 1  # from here the invocation waits for this attempt to record
        if is_async(fn):
            # An async body runs in a task of its own, shielded: cancelling the
            # caller (a TaskGroup sibling failed, the invocation ends) never
            # cuts a body in half; it finishes and records.
            context = step_context(StepInfo(self.run_id, step_call.key, attempt))
            body = asyncio.get_running_loop().create_task(
                self._attempt(step_call, fn, args, kwargs or {}), context=context
            )
            body.add_done_callback(retrieve)
            return await asyncio.shield(body)
        return await self._attempt(step_call, fn, args, kwargs or {})

    async def _attempt(
        self,
        step_call: StepCall,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """Run one attempt of a step body and record its outcome.

        The caller counted the attempt in flight; this gives the count back.
        """
        try:
            if self.stopping:
                self._stop_again()  # stopped before the body began: start nothing
            started = self.env.now()
            if step_call.spec.semantics == "at_most_once":
                self._persist(step_call.entry(EntryStatus.STARTED, started_at=started))
            self.env.observer.step_started(step_call.key, step_call.call.scope, step_call.attempt)
            token = enter_step(StepInfo(self.run_id, step_call.key, step_call.attempt))
            try:
                value = fn(*args, **kwargs)
                if type(value) not in _NEVER_AWAITABLE and inspect.isawaitable(value):
                    value = await value
                value, writes = unwrap(value)  # a transactional step's writes ride its record
            except Exception as exc:  # noqa: BLE001 - every user error is journaled
                return self._step_failed(step_call, started, exc)
            finally:
                leave_step(token)
            try:
                encoded, result = checked_value(
                    f"step {step_call.key!r}", value, step_call.spec.result_type
                )
                entry = step_call.completed(encoded, started, self.env.now())
                self._persist(entry, writes)
            except (SerializationError, PayloadTooLarge, TransactionConditionFailed) as exc:
                return self._step_failed(step_call, started, exc)
            self.steps_executed += 1
            self._ended(step_call, AttemptStatus.SUCCEEDED, None)
            return result
        finally:
            self._inflight -= 1
            if self._inflight == 0 and self._idle is not None:
                self._idle.set()

    def _step_failed(self, step_call: StepCall, started: dt.datetime, exc: Exception) -> Any:
        policy = step_call.spec.retry or self.task_retry
        decision = policy.decide(step_call.attempt, exc, self.env.rng)
        now = self.env.now()
        error = error_of(exc)
        entry = step_call.entry(EntryStatus.FAILED, error=error, started_at=started, ended_at=now)
        status = AttemptStatus.RETRYING if decision.retry else AttemptStatus.FAILED
        self._ended(step_call, status, error)
        if decision.retry:
            wake = now + dt.timedelta(seconds=decision.delay)
            retrying = replace(entry, status=EntryStatus.RETRYING, wake_at=wake)
            self._pending.append(retrying)
            self.journal.record(retrying)
            self._suspend(SuspendReason.STEP_RETRY, wake, f"{step_call.key}: {decision.reason}")
        self._persist(entry)
        if isinstance(exc, AbortRun):
            raise exc
        raise StepFailedError(step_call.key, error.type, error.message) from exc

    def _ended(self, step_call: StepCall, status: AttemptStatus, error: ErrorInfo | None) -> None:
        self.env.observer.step_ended(
            step_call.key, step_call.call.scope, step_call.attempt, status, error
        )

    async def wait_until(self, wake_at: dt.datetime) -> None:
        """Pause the task until ``wake_at``: in-process when short, else suspend."""
        call = self.journal.next_call(current_scope(), WAIT_NAME, EntryKind.WAIT)
        recorded = call.recorded
        if recorded is not None:
            if recorded.wake_at is not None and recorded.wake_at > self.env.now():
                self._suspend(SuspendReason.WAIT, recorded.wake_at, recorded.key)
            self.steps_replayed += 1
            if recorded.status is EntryStatus.WAITING:
                # Elapsed: store it as such with the next write of this invocation.
                done = replace(recorded, status=EntryStatus.COMPLETED, ended_at=self.env.now())
                self._pending.append(done)
                self.journal.record(done)
            return
        if self.stopping:
            self._stop_again()
        now = self.env.now()
        seconds = (wake_at - now).total_seconds()
        entry = entry_of(
            call,
            WAIT_NAME,
            EntryKind.WAIT,
            EntryStatus.WAITING,
            1,
            started_at=now,
            wake_at=wake_at,
        )
        fits = not must_suspend(self.env.remaining(), self.env.safety_margin, max(seconds, 0.0))
        if seconds <= self.env.short_wait and fits:
            if seconds > 0:
                await self.env.sleep(seconds)
            self._persist(replace(entry, status=EntryStatus.COMPLETED, ended_at=self.env.now()))
            return
        self._pending.append(entry)
        self.journal.record(entry)
        self._suspend(SuspendReason.WAIT, wake_at, entry.key)

    def _persist(self, entry: JournalEntry, writes: tuple[TableWrite, ...] | None = None) -> None:
        """Record ``entry`` (with ``writes``); store failures stop the invocation, not user code."""
        if self.abandoned is not None or self.store_error is not None or self.canceled is not None:
            self._stop_again()
        try:
            if writes:
                self.env.transact(entry, writes)
            else:
                self.env.record(entry)
        except CancelRequestedError as exc:
            # The step boundary where a requested cancel is seen: no new body
            # starts. A plain record rides the CANCELED checkpoint instead; a
            # transactional one did not commit its writes, so it is not recorded.
            self.canceled = str(exc)
            if not writes:
                self.pend(entry)
            raise CancelSignal from exc
        except LeaseLostError as exc:
            self.abandoned = str(exc)
            raise AbandonSignal from exc
        except (PayloadTooLarge, TransactionConditionFailed):
            raise  # the step's own failure: a result too large, a write's condition
        except Exception as exc:
            # Throttling or an outage that outlived the client's retries. Not
            # the task's fault: fail the invocation so the message is retried,
            # without spending one of the task's attempts.
            self.store_error = exc
            raise StoreFailedSignal from exc
        self.journal.record(entry)

    def _suspend(
        self,
        reason: SuspendReason,
        wake_at: dt.datetime | None,
        detail: str,
        children: frozenset[str] = frozenset(),
    ) -> None:
        self._suspends.append(SuspendRequest(reason, wake_at, detail, current_scope(), children))
        raise SuspendSignal

    # -- for composite calls (engine/composition.py) -----------------------------------

    def check_not_stopping(self) -> None:
        """Raise the stop under way, if any: a composite call starts nothing new either."""
        if self.stopping:
            self._stop_again()

    def persist(self, entry: JournalEntry) -> None:
        """Record ``entry`` as a step record is (fenced; store errors stop the invocation)."""
        self._persist(entry)

    def pend(self, entry: JournalEntry) -> None:
        """Keep ``entry`` for the invocation's checkpoint (a pending call, as a long wait is).

        It replaces an entry pending at the same slot: one write per item.
        """
        self._pending = [e for e in self._pending if e.slot != entry.slot]
        self._pending.append(entry)
        self.journal.record(entry)

    def suspend(
        self,
        reason: SuspendReason,
        wake_at: dt.datetime | None,
        detail: str,
        children: frozenset[str] = frozenset(),
    ) -> None:
        """Stop the invocation here; the run resumes at ``wake_at`` (always raises).

        ``children``: for a wait on children, those still running.
        """
        self._suspend(reason, wake_at, detail, children)

    def fail_store(self, exc: Exception) -> None:
        """Stop the invocation for a store error (the message is retried; always raises)."""
        self.store_error = exc
        raise StoreFailedSignal from exc

    def withdraw_suspends(self, scopes: Sequence[str]) -> None:
        """Forget the suspensions asked for inside ``scopes`` (branches a batch no longer needs).

        A batch that completes early cuts its unfinished branches; a wait or a
        retry backoff one of them asked for must not hold the run back.
        """
        self._suspends = [r for r in self._suspends if not within(r.scope, scopes)]

    def _stop_again(self) -> None:
        """Raise the signal of the stop already under way (user code may have swallowed it)."""
        if self.abandoned is not None:
            raise AbandonSignal
        if self.store_error is not None:
            raise StoreFailedSignal
        if self.canceled is not None:
            raise CancelSignal
        raise SuspendSignal

    # -- the invocation ------------------------------------------------------------------

    def run(self, main: Callable[[], Coroutine[Any, Any, Any]]) -> Outcome:
        """Run the task coroutine made by ``main`` and return the invocation's outcome.

        Raises:
            Exception: The store failed to record (the invocation fails whole
                and its message is retried; no task attempt is spent).
        """
        token = _current.set(self)
        numbering = ScopeNumbering(in_step_body)
        ended: list[BaseException | None] = []
        try:
            with asyncio.Runner() as runner:
                loop = runner.get_loop()
                loop.set_task_factory(numbering.task_factory)
                loop.set_exception_handler(quiet_signals)
                output = runner.run(self._drive(main, ended))
        except BaseException as exc:  # noqa: BLE001 - classified below
            return self._outcome_of_error(exc, ended)
        finally:
            _current.reset(token)
        return self._outcome_of_return(output)

    async def _drive(
        self, main: Callable[[], Coroutine[Any, Any, Any]], ended: list[BaseException | None]
    ) -> Any:
        """Run the body, then let every step body still running finish and record."""
        try:
            output = await main()
        except BaseException as exc:
            ended.append(exc)
            await self._drain()
            raise
        ended.append(None)
        stopped_before_return = self.stopping
        await self._drain()
        if stopped_before_return:
            raise SuspendSwallowedError(self._swallowed_message("returned"))
        return output

    async def _drain(self) -> None:
        while self._inflight:
            self._idle = self._idle or asyncio.Event()
            self._idle.clear()
            await self._idle.wait()
