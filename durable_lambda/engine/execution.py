"""One invocation of a run: replay the journal, execute new calls, decide the outcome. Pure.

The task function runs from the top on every invocation. Each step or wait
call asks the :class:`Execution` bound to the current context; calls that
the journal already holds return at once, new ones execute and are recorded
through the ``record`` callable before the task goes on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from durable_lambda import serde
from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, Journal, JournalEntry
from durable_lambda.engine.lease import must_suspend
from durable_lambda.engine.outcome import (
    Abandoned,
    Completed,
    Failed,
    Outcome,
    RetryRun,
    Suspended,
    SuspendReason,
)
from durable_lambda.engine.retry import RandomSource, RetryPolicy
from durable_lambda.errors import (
    AbortRun,
    LeaseLostError,
    StepFailedError,
    Suspend,
    TerminalError,
)

WAIT_NAME = "$wait"

Recorder = Callable[[JournalEntry], None]
"""Persists a journal entry before the task goes on (raises ``LeaseLostError`` when fenced out)."""


@dataclass(frozen=True, slots=True)
class StepSpec:
    """How a step is run and recorded.

    Attributes:
        name: The step's name; with its occurrence count it is the step's identity.
        retry: Its retry policy; ``None`` uses the task's.
        expected_duration: Seconds the step is expected to take; the invocation
            suspends first when that would cut into the deadline's safety margin.
        result_type: Annotation the recorded result is validated into on return.
    """

    name: str
    retry: RetryPolicy | None = None
    expected_duration: float = 0.0
    result_type: Any = None


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step body can learn about itself (see ``TaskContext``)."""

    run_id: str
    key: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across every attempt and replay of this step in this run."""
        return f"{self.run_id}:{self.key}"


@dataclass(slots=True)
class Environment:
    """The outside world as the engine sees it during one invocation.

    Attributes:
        now: The current time (UTC, aware).
        remaining: Seconds left before the invocation's deadline.
        record: Persists a journal entry (fenced by the run's lease).
        sleep: Waits in-process; used for waits shorter than ``short_wait``.
        safety_margin: Seconds before the deadline at which no new step starts.
        short_wait: Waits at most this long sleep in-process when time allows.
        rng: Randomness for retry jitter.
    """

    now: Callable[[], dt.datetime]
    remaining: Callable[[], float]
    record: Recorder
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    safety_margin: float = 10.0
    short_wait: float = 1.0
    rng: RandomSource | None = None


def _wake_key(request: _SuspendRequest) -> dt.datetime:
    return request.wake_at or dt.datetime.min.replace(tzinfo=dt.UTC)


class _SuspendSignal(Suspend):
    """Internal: stop this invocation; the reason is kept on the execution."""


class _AbandonSignal(Suspend):
    """Internal: another invocation owns the run; stop without writing anything."""


_current: ContextVar[Execution | None] = ContextVar("durable_lambda_execution", default=None)
_current_step: ContextVar[StepInfo | None] = ContextVar("durable_lambda_step", default=None)


def current_execution() -> Execution | None:
    """The execution driving the current task, or ``None`` outside a task."""
    return _current.get()


def current_step() -> StepInfo | None:
    """The step whose body is running, or ``None`` outside a step."""
    return _current_step.get()


def _error_of(exc: BaseException) -> ErrorInfo:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo.from_exception(exc, text)


@dataclass(frozen=True, slots=True)
class _Call:
    """One step call: its spec, position, occurrence and attempt number."""

    spec: StepSpec
    seq: int
    occurrence: int
    attempt: int

    @property
    def key(self) -> str:
        return f"{self.spec.name}#{self.occurrence}"

    def entry(self, status: EntryStatus, **fields: Any) -> JournalEntry:
        """This call's journal entry in ``status``."""
        return JournalEntry(
            seq=self.seq,
            name=self.spec.name,
            occurrence=self.occurrence,
            kind=EntryKind.STEP,
            status=status,
            attempts=self.attempt,
            **fields,
        )


@dataclass(slots=True)
class _SuspendRequest:
    reason: SuspendReason
    wake_at: dt.datetime | None
    detail: str


@dataclass(slots=True)
class Execution:
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
    _pending: list[JournalEntry] = field(default_factory=list)
    _suspends: list[_SuspendRequest] = field(default_factory=list)
    _inflight: int = 0
    _idle: asyncio.Event | None = None

    # -- calls from the task ---------------------------------------------------------

    async def call_step(
        self,
        spec: StepSpec,
        fn: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a step once per run: replay its record, or execute and record it."""
        seq, occurrence, recorded = self.journal.next_call(spec.name, EntryKind.STEP)
        attempt = 1
        if recorded is not None:
            if recorded.status is EntryStatus.COMPLETED:
                self.steps_replayed += 1
                return serde.decode(recorded.result or "null", spec.result_type)
            if recorded.status is EntryStatus.FAILED:
                self.steps_replayed += 1
                raise self._replayed_failure(recorded)
            # RETRYING: the next attempt, once its backoff has passed.
            attempt = recorded.attempts + 1
            if recorded.wake_at is not None and recorded.wake_at > self.env.now():
                await self._suspend(SuspendReason.STEP_RETRY, recorded.wake_at, recorded.key)
        # A fresh invocation always makes progress, or a step that can never
        # fit its expected duration would chain invocations forever.
        if self.steps_executed and must_suspend(
            self.env.remaining(), self.env.safety_margin, spec.expected_duration
        ):
            await self._suspend(SuspendReason.DEADLINE, None, f"before {spec.name}#{occurrence}")
        call = _Call(spec, seq, occurrence, attempt)
        return await self._execute(call, fn, args, kwargs or {})

    async def _execute(
        self, call: _Call, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        started = self.env.now()
        token = _current_step.set(StepInfo(self.run_id, call.key, call.attempt))
        self._inflight += 1
        failure: Exception | None = None
        try:
            value = fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            encoded = serde.encode(value)
        except Exception as exc:  # noqa: BLE001 - every user error is journaled
            failure = exc
        finally:
            _current_step.reset(token)
            self._inflight -= 1
            if self._inflight == 0 and self._idle is not None:
                self._idle.set()
        if failure is not None:
            return await self._step_failed(call, started, failure)
        entry = call.entry(
            EntryStatus.COMPLETED, result=encoded, started_at=started, ended_at=self.env.now()
        )
        self._persist(entry)
        self.steps_executed += 1
        return serde.decode(encoded, call.spec.result_type)

    async def _step_failed(self, call: _Call, started: dt.datetime, exc: Exception) -> Any:
        policy = call.spec.retry or self.task_retry
        decision = policy.decide(call.attempt, exc, self.env.rng)
        now = self.env.now()
        error = _error_of(exc)
        entry = call.entry(EntryStatus.FAILED, error=error, started_at=started, ended_at=now)
        if decision.retry:
            wake = now + dt.timedelta(seconds=decision.delay)
            retrying = replace(entry, status=EntryStatus.RETRYING, wake_at=wake)
            self._pending.append(retrying)
            self.journal.record(retrying)
            await self._suspend(SuspendReason.STEP_RETRY, wake, f"{call.key}: {decision.reason}")
        self._persist(entry)
        if isinstance(exc, AbortRun):
            raise exc
        raise StepFailedError(call.key, error.type, error.message) from exc

    @staticmethod
    def _replayed_failure(entry: JournalEntry) -> Exception:
        error = entry.error or ErrorInfo("UnknownError", "")
        if error.type.endswith(".AbortRun"):
            return AbortRun(error.message)
        return StepFailedError(entry.key, error.type, error.message)

    async def wait_until(self, wake_at: dt.datetime) -> None:
        """Pause the task until ``wake_at``: in-process when short, else suspend."""
        seq, occurrence, recorded = self.journal.next_call(WAIT_NAME, EntryKind.WAIT)
        if recorded is not None:
            if recorded.wake_at is None or recorded.wake_at <= self.env.now():
                self.steps_replayed += 1
                return
            await self._suspend(SuspendReason.WAIT, recorded.wake_at, recorded.key)
        now = self.env.now()
        seconds = (wake_at - now).total_seconds()
        entry = JournalEntry(
            seq=seq,
            name=WAIT_NAME,
            occurrence=occurrence,
            kind=EntryKind.WAIT,
            status=EntryStatus.WAITING,
            attempts=1,
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
        await self._suspend(SuspendReason.WAIT, wake_at, entry.key)

    def _persist(self, entry: JournalEntry) -> None:
        try:
            self.env.record(entry)
        except LeaseLostError as exc:
            self.abandoned = str(exc)
            raise _AbandonSignal from exc
        self.journal.record(entry)

    async def _suspend(
        self, reason: SuspendReason, wake_at: dt.datetime | None, detail: str
    ) -> None:
        self._suspends.append(_SuspendRequest(reason, wake_at, detail))
        # Let steps already running in parallel branches finish and record,
        # rather than cancel them half-done.
        if self._inflight:
            self._idle = self._idle or asyncio.Event()
            self._idle.clear()
            await self._idle.wait()
        raise _SuspendSignal

    # -- the invocation ------------------------------------------------------------------

    def run(self, main: Callable[[], Coroutine[Any, Any, Any]]) -> Outcome:
        """Run the task coroutine made by ``main`` and return the invocation's outcome."""
        token = _current.set(self)
        try:
            with asyncio.Runner() as runner:
                output = runner.run(main())
            return Completed(output=serde.encode(output))
        except _AbandonSignal:
            return Abandoned(reason=self.abandoned or "lease lost")
        except Suspend:
            return self._suspended()
        except TerminalError as exc:
            return Failed(error=_error_of(exc), reason=type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the task body's own errors follow its policy
            decision = self.task_retry.decide(self.attempt, exc, self.env.rng)
            if decision.retry:
                return RetryRun(error=_error_of(exc), delay=decision.delay, reason=decision.reason)
            return Failed(error=_error_of(exc), reason=decision.reason)
        finally:
            _current.reset(token)

    def _suspended(self) -> Suspended:
        requests = self._suspends or [_SuspendRequest(SuspendReason.DEADLINE, None, "")]
        now_first = [r for r in requests if r.wake_at is None]
        chosen = now_first[0] if now_first else min(requests, key=_wake_key)
        return Suspended(
            reason=chosen.reason,
            wake_at=chosen.wake_at,
            entries=tuple(self._pending),
            detail=chosen.detail,
        )
