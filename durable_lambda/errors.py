"""The error family of durable-lambda: one root, split into retryable and terminal.

This module imports nothing from the package so every layer can use it.
"""

from __future__ import annotations


class DurableLambdaError(Exception):
    """Root of every error raised by durable-lambda."""


class TerminalError(DurableLambdaError):
    """An error that fails the run at once: no retry can fix it."""


class RetryableError(DurableLambdaError):
    """An error after which the invocation may be tried again."""


class ConfigurationError(TerminalError, ValueError):
    """A task, step, queue or setting was declared with invalid values.

    It is also a ``ValueError``, so code that validated declarations with
    ``except ValueError`` keeps working.
    """


class PayloadValidationError(TerminalError):
    """A payload or output does not match the task's annotation.

    Attributes:
        task_id: The task whose payload was rejected.
        errors: One ``(field path, message)`` pair per problem.
    """

    def __init__(self, task_id: str, what: str, errors: list[tuple[str, str]]) -> None:
        self.task_id = task_id
        self.what = what
        self.errors = errors
        detail = "; ".join(f"{loc or '<root>'}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid {what} for task {task_id!r}: {detail}")


class PayloadTooLarge(TerminalError):  # noqa: N818 - the public name the API contract uses
    """A value is above the configured maximum size.

    Attributes:
        what: What the value is (``"step 'charge#0' result"``, ``"payload"``...).
        size: Its encoded size in bytes.
        limit: The configured maximum in bytes.
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(f"{what} is {size} bytes, above the maximum of {limit} bytes")


class SerializationError(TerminalError):
    """A value cannot be encoded to, or decoded from, JSON."""


class NonDeterminismError(TerminalError):
    """Replayed code called a different step than the journal recorded.

    Attributes:
        position: The position of the call within its scope.
        expected: The step the journal holds at that position.
        actual: The step the code called there (``None``: the code never called
            it; the task returned before reaching the recorded step).
        scope: The scope path of the call (``""``: the task body).
    """

    def __init__(
        self, position: int, expected: str, actual: str | None, *, scope: str = ""
    ) -> None:
        self.position = position
        self.expected = expected
        self.actual = actual
        self.scope = scope
        where = f"journal position {position}" + (f" of scope {scope!r}" if scope else "")
        now = (
            f"the code now calls {actual!r}"
            if actual is not None
            else "the task now returns without calling it"
        )
        super().__init__(
            f"non-deterministic replay at {where}: the journal recorded {expected!r} but "
            f"{now}; did a deploy change the task while this run was in flight?"
        )


class AbortRun(TerminalError):  # noqa: N818 - the public name the API contract uses
    """Raise inside a task or step to fail the run now, with no retry."""


class RetryAfter(RetryableError):  # noqa: N818 - the public name the API contract uses
    """Raise inside a step or task to retry after exactly ``seconds``.

    The attempt still counts against the retry policy's ``max_attempts``.
    """

    def __init__(self, seconds: float, message: str = "") -> None:
        if seconds < 0:
            raise ValueError(f"RetryAfter seconds must be >= 0, got {seconds}")
        self.seconds = float(seconds)
        super().__init__(message or f"retry requested after {seconds} s")


class StepFailedError(TerminalError):
    """A step failed on its last attempt; raised where the task awaited it.

    The original exception object cannot be rebuilt on replay (that would need
    pickle), so the task always sees this error, live or replayed alike.

    Attributes:
        step: The step's identity, ``name#occurrence``.
        error_type: The qualified type name of the step's last exception.
        error_message: Its message.
    """

    def __init__(self, step: str, error_type: str, error_message: str) -> None:
        self.step = step
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(f"step {step!r} failed: {error_type}: {error_message}")


class StepInterruptedError(RetryableError):
    """An ``at_most_once`` step's attempt started but its invocation died before recording it.

    Whether the body's side effect happened is unknown, so the attempt is not
    run again: it counts as failed with this error and the step's retry policy
    decides whether a new attempt follows.

    Attributes:
        step: The step's identity, ``name#occurrence``.
        attempt: The attempt that was interrupted.
    """

    def __init__(self, step: str, attempt: int) -> None:
        self.step = step
        self.attempt = attempt
        super().__init__(
            f"step {step!r} attempt {attempt} was interrupted after it started and before "
            "its result was recorded; at_most_once does not run that attempt again"
        )


class ConditionNotMetError(TerminalError):
    """``wait.for_condition`` made its last check and the condition still did not hold.

    Terminal: a replay of the same journal would make the same checks again.

    Attributes:
        name: The condition's name (its checks' step name).
        attempts: Checks made.
        state: The state the last check returned.
    """

    def __init__(self, name: str, attempts: int, state: object) -> None:
        self.name = name
        self.attempts = attempts
        self.state = state
        super().__init__(
            f"condition {name!r} not met after {attempts} checks (WaitStrategy.max_attempts)"
        )


class TransactionConditionFailed(RetryableError):  # noqa: N818 - the public name of the contract
    """A condition of a transactional step's write did not hold; nothing was written.

    The step's retry policy decides whether the step runs again (its body
    describes the writes afresh).

    Attributes:
        table: The table of the write whose condition failed.
        key: That item's key.
        index: The write's position among the step's writes.
    """

    def __init__(self, table: str, key: dict[str, object], index: int) -> None:
        self.table = table
        self.key = key
        self.index = index
        super().__init__(
            f"transaction condition failed on write {index}: table {table!r} key {key!r}; "
            "nothing was written"
        )


class TransactionLimitError(TerminalError):
    """A transactional step's writes are beyond what one DynamoDB transaction takes.

    Raised before anything is written; terminal, as the same body would
    describe the same writes again.

    Attributes:
        what: What is counted (``"writes"``, ``"bytes of all writes"``...).
        size: How many there are.
        limit: The most allowed.
    """

    def __init__(self, what: str, size: int, limit: int, why: str) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(f"transaction {what}: {size}, above the limit of {limit} ({why})")


class UnknownTaskError(TerminalError):
    """No task with this id is registered in this process."""


class RunNotFoundError(DurableLambdaError):
    """No run with this id exists."""


class UnknownStepError(DurableLambdaError, LookupError):
    """A replay ``from_step`` names no step of the run's journal; nothing was created.

    Attributes:
        run_id: The run to replay.
        step: The step name asked for.
        known: The step names the journal holds, in journal order.
    """

    def __init__(self, run_id: str, step: str, known: list[str]) -> None:
        self.run_id = run_id
        self.step = step
        self.known = known
        steps = ", ".join(known) or "none"
        super().__init__(f"run {run_id} recorded no step {step!r} (its steps: {steps})")


class RunWaitTimeoutError(DurableLambdaError, TimeoutError):
    """A run did not end within the time a caller waited for it (the run goes on).

    Attributes:
        run_id: The run waited for.
        status: Its status when the wait gave up.
        timeout: The seconds waited.
    """

    def __init__(self, run_id: str, status: str, timeout: float) -> None:
        self.run_id = run_id
        self.status = status
        self.timeout = timeout
        super().__init__(f"run {run_id} is still {status} after waiting {timeout:g} s")


class RunExistsError(DurableLambdaError, ValueError):
    """A run with this id already exists; the create wrote nothing.

    It is also a ``ValueError``, as the stores raised before it had a name.

    Attributes:
        run_id: The run id already taken.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} already exists")


class IdempotencyClaimConflictError(RetryableError):
    """Other triggers with the same idempotency key kept the claim contended; nothing was created.

    Trigger again: the retry finds the run the winning trigger created.

    Attributes:
        task_id: The task the key belongs to.
        idempotency_key: The contended key.
        attempts: Claim attempts made.
    """

    def __init__(self, task_id: str, idempotency_key: str, attempts: int) -> None:
        self.task_id = task_id
        self.idempotency_key = idempotency_key
        self.attempts = attempts
        super().__init__(
            f"idempotency key {idempotency_key!r} of task {task_id!r}: still contended "
            f"by other triggers after {attempts} claim attempts"
        )


class LeaseLostError(RetryableError):
    """Another invocation owns the run now; this one must stop writing."""


class CancelRequestedError(RetryableError):
    """A cancel was requested while this invocation held the run: it must stop now.

    Fenced writes (step records, checkpoints other than CANCELED) are refused
    once a cancel is requested; the invocation then writes the run CANCELED.
    """


class RunFinishedError(TerminalError):
    """The run has already finished: canceling it changes nothing.

    Attributes:
        run_id: The run.
        status: The status it finished in.
    """

    def __init__(self, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id} already finished {status}: there is nothing to cancel")


class SlotAvailableError(RetryableError):
    """Parking failed because the counter has room again: acquire instead."""


class ReleaseNotFoldedError(RetryableError):
    """A unit could not be given back inside the checkpoint; nothing was written.

    Runs are parked on the counter (a hand-off is due) or the unit is no longer
    held: checkpoint, then release apart.
    """


class HopLimitExceeded(TerminalError):  # noqa: N818 - reads as an event, like AbortRun
    """The run re-invoked itself more often than its configured maximum."""


class ChildDepthExceeded(TerminalError):  # noqa: N818 - reads as an event, like HopLimitExceeded
    """A task triggered a child deeper than the ``max_child_depth`` setting allows."""


class SuspendSwallowedError(TerminalError):
    """The task body caught the runtime's suspend signal and went on.

    The runtime stops an invocation (at a wait, a retry backoff, the Lambda
    deadline) by raising a ``BaseException``. A bare ``except:`` or
    ``except BaseException:`` around a step or wait catches it; the body's
    result after that is not the run's result, so the run fails with this
    error rather than complete with a wrong one. Catch ``Exception`` instead.
    """


class Suspend(BaseException):
    """Control-flow signal that stops the current invocation.

    It derives from ``BaseException`` so ``except Exception`` in user code
    cannot swallow it. Users never raise or catch it.
    """


class TokenNotFoundError(TerminalError):
    """No wait token with this id exists.

    Attributes:
        token_id: The id asked for.
    """

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"no wait token {token_id!r}")


class TokenAlreadyResolvedError(TerminalError):
    """The token was already resolved; this completion changed nothing.

    Attributes:
        token_id: The token.
        state: How it was resolved: ``COMPLETED``, ``FAILED``, ``TIMED_OUT`` or ``CANCELED``.
    """

    def __init__(self, token_id: str, state: str) -> None:
        self.token_id = token_id
        self.state = state
        super().__init__(f"wait token {token_id!r} is already {state}: nothing was changed")


class TokenFailedError(TerminalError):
    """The token was failed by its completer (``tokens.fail``); raised where the task waits.

    Attributes:
        error_type: The error type the completer gave.
        message: Its message.
        token_id: The token.
    """

    def __init__(self, error_type: str, message: str, *, token_id: str = "") -> None:
        self.error_type = error_type
        self.message = message
        self.token_id = token_id
        super().__init__(f"wait token {token_id!r} failed: {error_type}: {message}")


class TokenTimeoutError(TerminalError):
    """The token was not completed in time; raised where the task waits.

    Attributes:
        reason: ``"timeout"`` (its timeout passed) or ``"heartbeat"`` (no
            heartbeat came within its heartbeat timeout).
        token_id: The token.
    """

    def __init__(self, reason: str, *, token_id: str = "") -> None:
        self.reason = reason
        self.token_id = token_id
        what = (
            "no heartbeat within its heartbeat timeout"
            if reason == "heartbeat"
            else "its timeout passed"
        )
        super().__init__(f"wait token {token_id!r} timed out: {what}")
