"""How an invocation ends: the outcome of the task body's return, error or stop signal. Pure.

A mixin of :class:`~durable_lambda.engine.execution.Execution`, apart so that
the decision reads on its own: a return completes the run (unless calls the
journal holds were never made), a stop signal suspends, abandons or cancels
it, and a genuine error follows the task's retry policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_lambda import serde
from durable_lambda.engine.calls import error_of
from durable_lambda.engine.journal import EntryStatus, Journal, JournalEntry
from durable_lambda.engine.outcome import (
    Abandoned,
    Canceled,
    Completed,
    Failed,
    Outcome,
    RetryRun,
    Suspended,
)
from durable_lambda.engine.signals import caught_signal, only_signals, swallowed_message
from durable_lambda.engine.suspension import SuspendRequest, suspended
from durable_lambda.errors import (
    NonDeterminismError,
    SerializationError,
    Suspend,
    SuspendSwallowedError,
    TerminalError,
)

if TYPE_CHECKING:
    from durable_lambda.engine.environment import Environment
    from durable_lambda.engine.retry import RetryPolicy

__all__ = ["InvocationEnd"]


class InvocationEnd:
    """The outcome decisions of an execution (its state is the execution's)."""

    attempt: int
    journal: Journal
    env: Environment
    task_retry: RetryPolicy
    abandoned: str | None
    store_error: Exception | None
    canceled: str | None
    _pending: list[JournalEntry]
    _suspends: list[SuspendRequest]

    def _outcome_of_return(self, output: Any) -> Outcome:
        missed = self.journal.unvisited()
        if missed:
            first = missed[0]
            error = NonDeterminismError(first.slot[1], first.key, None, scope=first.scope)
            return self._failed(error)
        try:
            encoded = serde.encode(output)
        except SerializationError as exc:
            return self._failed(exc)
        return Completed(output=encoded, entries=self._entries())

    def _outcome_of_error(self, exc: BaseException, ended: list[BaseException | None]) -> Outcome:
        stopped = self._outcome_of_stop(exc, ended[0] if ended else exc)
        if stopped is not None:
            return stopped
        if isinstance(exc, BaseExceptionGroup):
            # A TaskGroup gathers its tasks' errors: genuine errors beside our
            # signals decide as they would alone.
            exc = exc.split(Suspend)[1] or exc
        if isinstance(exc, TerminalError):
            return self._failed(exc)
        if isinstance(exc, Exception):
            # The task body's own error follows the task's retry policy.
            decision = self.task_retry.decide(self.attempt, exc, self.env.rng)
            if decision.retry:
                return RetryRun(error=error_of(exc), delay=decision.delay, reason=decision.reason)
            return Failed(error=error_of(exc), reason=decision.reason, entries=self._entries())
        raise exc  # KeyboardInterrupt, SystemExit: not ours to judge

    def _outcome_of_stop(
        self, exc: BaseException, body_error: BaseException | None
    ) -> Outcome | None:
        """The outcome when a stop signal was raised; ``None`` when a genuine error decides.

        Raises:
            Exception: The store error that stopped the invocation.
        """
        if self.abandoned is not None or self.canceled is not None:
            return self._halted()
        if self.store_error is not None:
            raise self.store_error
        if isinstance(exc, SuspendSwallowedError):
            return self._failed(exc)
        if isinstance(body_error, Suspend) or only_signals(body_error):
            # With no request left (a batch withdrew them), it continues at once.
            return self._suspended()
        if not self._suspends:
            return None
        if caught_signal(body_error):
            return self._failed(SuspendSwallowedError(self._swallowed_message("raised")))
        # A genuine error of another scope, raised while this one suspended.
        return None

    def _halted(self) -> Abandoned | Canceled:
        """Taken over by another invocation (writes nothing), or canceled (ends the run)."""
        if self.abandoned is not None:
            return Abandoned(reason=self.abandoned)
        return Canceled(self.canceled or "", entries=self._entries())

    def _swallowed_message(self, what: str) -> str:
        request = self._suspends[0] if self._suspends else None
        return swallowed_message(request.detail if request is not None else "", what)

    def _failed(self, exc: BaseException) -> Failed:
        return Failed(error=error_of(exc), reason=type(exc).__name__, entries=self._entries())

    def _entries(self) -> tuple[JournalEntry, ...]:
        """Pending entries still true at the end of the run (elapsed waits, not retries)."""
        return tuple(e for e in self._pending if e.status is not EntryStatus.RETRYING)

    def _suspended(self) -> Suspended:
        return suspended(self._suspends, tuple(self._pending))
