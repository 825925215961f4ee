"""What a client controls besides triggers: cancels, tokens and queues (mixed into ``Client``)."""

from __future__ import annotations

from typing import Any

from durable_lambda import serde
from durable_lambda.admission import Admission
from durable_lambda.cancels import DEFAULT_REASON, Cancels
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage, RunRecord
from durable_lambda.engine.slots import QueueState, SlotKey
from durable_lambda.engine.tokens import Resolution, TokenInfo, TokenStatus
from durable_lambda.errors import ConfigurationError, TokenNotFoundError
from durable_lambda.plugins import emit
from durable_lambda.ports import Clock, ResumeQueue, RunStore, SlotStore, TokenStore

#: Bounds on what ``fail_token`` records: an error names a problem, it carries no payload.
MAX_ERROR_TYPE_LENGTH = 256
MAX_ERROR_MESSAGE_LENGTH = 32 * 1024


class RunControl:
    """Cancel runs: the run, its unit, its pending tokens and its children."""

    store: RunStore
    queue: ResumeQueue
    clock: Clock
    admission: Admission | None
    tokens: TokenStore | None

    @property
    def cancels(self) -> Cancels:
        """The canceller on this client's ports."""
        return Cancels(
            store=self.store,
            queue=self.queue,
            clock=self.clock,
            admission=self.admission,
            tokens=self.tokens,
        )

    def cancel_run(self, run_id: str, reason: str = DEFAULT_REASON) -> RunRecord:
        """Cancel a run: at once when nobody executes it, else at its next step boundary.

        Its concurrency unit is given back and handed on, its pending wait
        tokens resolve CANCELED, its children are canceled, and a parent
        waiting on it receives a canceled ``RunResult``.

        Returns:
            The run as it now stands: CANCELED, or RUNNING with ``cancel_requested``
            (its invocation ends it CANCELED at its next step boundary).

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It has already finished; nothing changed.
        """
        return self.cancels.cancel(run_id, reason)


class TokenControl:
    """Resolve, heartbeat and read wait tokens; the waiting run is nudged awake."""

    tokens: TokenStore | None
    queue: ResumeQueue
    clock: Clock

    def complete_token(self, token_id: str, data: Any = None) -> TokenInfo:
        """Complete a wait token with ``data``; the run waiting on it wakes at once.

        The completion is one conditional write: of two racing resolutions one
        wins whole and the other raises. The run is then nudged (a resume
        message it takes whatever its epoch, while it waits on the token).

        Raises:
            TokenNotFoundError: No such token.
            TokenAlreadyResolvedError: It was resolved already (naming how);
                nothing changed.
            PayloadTooLarge: ``data`` is above the maximum value size.
            SerializationError: ``data`` has no JSON form.
        """
        resolution = Resolution(TokenStatus.COMPLETED, data=serde.encode(data))
        return self._resolve(token_id, resolution)

    def fail_token(self, token_id: str, error_type: str, message: str = "") -> TokenInfo:
        """Fail a wait token: the waiting run sees ``TokenFailedError(error_type, message)``.

        Raises:
            TokenNotFoundError: No such token.
            TokenAlreadyResolvedError: It was resolved already; nothing changed.
            ConfigurationError: ``error_type`` is empty or either text is too long.
        """
        if not 0 < len(error_type) <= MAX_ERROR_TYPE_LENGTH:
            raise ConfigurationError(
                f"error_type must be 1-{MAX_ERROR_TYPE_LENGTH} characters, got {len(error_type)}"
            )
        if len(message) > MAX_ERROR_MESSAGE_LENGTH:
            raise ConfigurationError(
                f"message is {len(message)} characters, above the maximum of "
                f"{MAX_ERROR_MESSAGE_LENGTH}"
            )
        resolution = Resolution(TokenStatus.FAILED, error=ErrorInfo(error_type, message))
        return self._resolve(token_id, resolution)

    def heartbeat_token(self, token_id: str) -> TokenInfo:
        """Record a heartbeat: the token's heartbeat deadline moves out by its heartbeat timeout.

        Raises:
            TokenNotFoundError: No such token.
            TokenAlreadyResolvedError: It was resolved already.
        """
        return self._require_tokens().heartbeat(token_id, self.clock.now())

    def retrieve_token(self, token_id: str) -> TokenInfo:
        """The token: status, run id, deadlines, timestamps and data.

        Raises:
            TokenNotFoundError: No such token.
        """
        token = self._require_tokens().get(token_id)
        if token is None:
            raise TokenNotFoundError(token_id)
        return token

    def _resolve(self, token_id: str, resolution: Resolution) -> TokenInfo:
        now = self.clock.now()
        token = self._require_tokens().resolve(token_id, resolution, now)
        waited = max(0.0, (now - token.created_at).total_seconds())
        emit("on_token_resolved", token.run_id, token.status.value, waited)
        # Wake the run now. Lost (a crash right here), the run still reads the
        # token at its deadline or its recheck time.
        self.queue.send(ResumeMessage(token.run_id, ANY_EPOCH), 0)
        return token

    def _require_tokens(self) -> TokenStore:
        if self.tokens is None:
            raise ConfigurationError("this client was built without a token store (tokens=)")
        return self.tokens


class QueueControl:
    """Pause, resume and re-limit queues at runtime; read their counters."""

    slots: SlotStore | None
    admission: Admission | None

    def pause_queue(self, name: str, concurrency_key: str | None = None) -> QueueState:
        """Pause a queue (or one concurrency key of it): it starts nothing until resumed.

        Runs already executing finish their invocation; runs that would start
        are parked and cost no invocation while the queue is paused.
        """
        return self._control(SlotKey(name, concurrency_key), paused=True)

    def resume_queue(self, name: str, concurrency_key: str | None = None) -> QueueState:
        """Resume a paused queue; parked runs are handed units at once."""
        return self._control(SlotKey(name, concurrency_key), paused=False)

    def set_queue_limit(
        self, name: str, limit: int | None, concurrency_key: str | None = None
    ) -> QueueState:
        """Override a queue's concurrency limit at runtime (``None`` returns to the code's)."""
        if limit is not None and limit < 1:
            raise ConfigurationError(f"limit must be >= 1 or None, got {limit}")
        key = SlotKey(name, concurrency_key)
        if limit is None:
            return self._control(key, clear_override=True)
        return self._control(key, limit_override=limit)

    def queue_state(self, name: str, concurrency_key: str | None = None) -> QueueState:
        """The queue's counter: holders, parked runs, pause and limit."""
        return self._require_slots().state(SlotKey(name, concurrency_key))

    def _control(
        self,
        key: SlotKey,
        *,
        paused: bool | None = None,
        limit_override: int | None = None,
        clear_override: bool = False,
    ) -> QueueState:
        state = self._require_slots().set_control(
            key, paused=paused, limit_override=limit_override, clear_override=clear_override
        )
        if self.admission is not None and state.waiting:
            self.admission.hand_off(key)  # takes effect now; the scheduler is the fallback
            state = self._require_slots().state(key)
        return state

    def _require_slots(self) -> SlotStore:
        if self.slots is None:
            raise ConfigurationError("this client was built without a slot store (slots=)")
        return self.slots
