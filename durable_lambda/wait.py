"""``wait``: pause a task for a duration, until a time, or until the world completes a token.

Every function checks its arguments when called, not when awaited, so a bad
duration fails at the line that wrote it even if the coroutine is never awaited.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from durable_lambda.engine.calls import StepSpec, current_step
from durable_lambda.engine.execution import Execution, current_execution
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.engine.tokens import Token, wait_token
from durable_lambda.engine.tokens import create_token as _create_token
from durable_lambda.errors import ConfigurationError

# Polling lives in a module of its own; it is part of the ``wait`` namespace.
from durable_lambda.polling import for_condition

__all__ = [
    "Token",
    "create_token",
    "for_",
    "for_callback",
    "for_condition",
    "for_token",
    "until",
]


def for_(
    *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
) -> Coroutine[Any, Any, None]:
    """Pause the task for the given duration; await the result.

    Short waits (up to the ``short_wait`` setting) sleep in-process; longer ones
    checkpoint the run and end the invocation, which resumes through SQS (or the
    timer index beyond SQS's 15-minute delay).

    Raises:
        ConfigurationError: The total duration is negative or not a finite
            number of seconds a ``timedelta`` can hold.
    """
    total = seconds + 60 * minutes + 3600 * hours + 86400 * days
    if math.isnan(total) or total < 0:
        raise ConfigurationError(f"wait.for_ needs a duration >= 0 seconds, got {total:g} seconds")
    try:
        duration = dt.timedelta(seconds=total)
    except OverflowError:
        raise ConfigurationError(
            f"wait.for_ needs a finite duration of at most {dt.timedelta.max.days} days, "
            f"got {total:g} seconds"
        ) from None
    return _wait_for(duration)


async def _wait_for(duration: dt.timedelta) -> None:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.for_ can only be awaited inside a running task")
    await execution.wait_until(execution.env.now() + duration)


def until(when: dt.datetime) -> Coroutine[Any, Any, None]:
    """Pause the task until ``when``; await the result.

    Raises:
        ConfigurationError: ``when`` is naive: without a timezone the instant is
            ambiguous (local time on a laptop, UTC on Lambda).
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigurationError(
            f"wait.until needs a timezone-aware datetime, got naive {when.isoformat()}; "
            "pass e.g. datetime(..., tzinfo=datetime.UTC)"
        )
    return _wait_until(when)


async def _wait_until(when: dt.datetime) -> None:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.until can only be awaited inside a running task")
    await execution.wait_until(when)


# -- wait tokens ---------------------------------------------------------------------------

Duration = dt.timedelta | float | None
"""A timeout: a ``timedelta``, seconds, or ``None`` for none."""


@dataclass(frozen=True, slots=True)
class _TokenOptions:
    """A token's options, checked where the call was written."""

    name: str | None
    timeout: float | None
    heartbeat_timeout: float | None
    tags: tuple[str, ...]

    @classmethod
    def of(
        cls, name: str | None, timeout: Duration, heartbeat_timeout: Duration, tags: Sequence[str]
    ) -> _TokenOptions:
        if name is not None and (not name or "/" in name or "#" in name or name.startswith("$")):
            raise ConfigurationError(
                f"token name {name!r} must be non-empty, without '/' or '#', not starting with '$'"
            )
        return cls(
            name,
            _duration(timeout, "timeout"),
            _duration(heartbeat_timeout, "heartbeat_timeout"),
            tuple(tags),
        )

    def create(self, execution: Execution) -> Token:
        return _create_token(
            execution,
            name=self.name,
            timeout=self.timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            tags=self.tags,
        )


def create_token(
    *,
    timeout: Duration = None,
    heartbeat_timeout: Duration = None,
    name: str | None = None,
    tags: Sequence[str] = (),
) -> Coroutine[Any, Any, Token]:
    """Create a wait token for a person, a webhook or another system to complete; await it.

    The call is journaled: a replay returns the same token, and a create
    re-executed after a crash finds the token it made. Hand ``token.id`` (or
    ``token.url``) to whoever completes it, then ``await wait.for_token(token)``.

    Args:
        timeout: No completion by then raises ``TokenTimeoutError`` in
            ``for_token`` (``None``: wait until completed or the run is canceled).
        heartbeat_timeout: No ``tokens.heartbeat`` within this long (from the
            creation or the last heartbeat) raises ``TokenTimeoutError`` with
            ``reason="heartbeat"``.
        name: Its name (the journal's name of the call; default ``$token``).
        tags: Labels stored with it.

    Raises:
        ConfigurationError: A negative timeout, or a name with ``/`` or ``#``.
    """
    return _create(_TokenOptions.of(name, timeout, heartbeat_timeout, tags))


async def _create(options: _TokenOptions) -> Token:
    return options.create(_execution("wait.create_token"))


def for_token(token: Token | str, *, result_type: Any = None) -> Coroutine[Any, Any, Any]:
    """Wait until ``token`` (or a token id) is completed; return its data. Await the result.

    The run suspends meanwhile (no Lambda time) and wakes when the token is
    completed, failed or times out. Once resolved, the outcome is journaled:
    replay returns it without reading the token again.

    Args:
        token: A token from :func:`create_token`, or its id.
        result_type: Validate the data into this type (pydantic model,
            dataclass, JSON types); ``None`` returns the plain JSON value.

    Raises:
        TokenFailedError: The completer called ``tokens.fail``.
        TokenTimeoutError: Its timeout or heartbeat timeout passed first.
        TokenNotFoundError: No such token.
        SerializationError: The data does not fit ``result_type``.
    """
    token_id = token.id if isinstance(token, Token) else token
    if not isinstance(token_id, str) or not token_id:
        raise ConfigurationError(f"wait.for_token needs a Token or a token id, got {token!r}")
    return _for_token(token, result_type)


async def _for_token(token: Token | str, result_type: Any) -> Any:
    return wait_token(_execution("wait.for_token"), token, result_type)


def for_callback(
    submit: Callable[[Token], Any],
    *,
    timeout: Duration = None,
    heartbeat_timeout: Duration = None,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    result_type: Any = None,
    tags: Sequence[str] = (),
) -> Coroutine[Any, Any, Any]:
    """Create a token, run ``submit(token)`` as a step, then wait for the token. Await it.

    ``submit`` hands the token to the outside world (sends the approval
    email, calls the webhook). It is a journaled step with ``retry`` (default:
    the task's policy): once it succeeded a replay does not run it again, and
    if it fails its last attempt the wait fails with ``StepFailedError``
    naming its error. It may be sync or async.

    Args:
        submit: Called with the token.
        timeout: As for :func:`create_token`.
        heartbeat_timeout: As for :func:`create_token`.
        name: Names the token (and the step ``<name>.submit``).
        retry: The submitter step's retry policy.
        result_type: As for :func:`for_token`.
        tags: As for :func:`create_token`.
    """
    options = _TokenOptions.of(name, timeout, heartbeat_timeout, tags)
    if not callable(submit):
        raise ConfigurationError(f"wait.for_callback needs a callable submitter, got {submit!r}")
    return _for_callback(submit, options, retry, result_type)


async def _for_callback(
    submit: Callable[[Token], Awaitable[Any] | Any],
    options: _TokenOptions,
    retry: RetryPolicy | None,
    result_type: Any,
) -> Any:
    execution = _execution("wait.for_callback")
    token = options.create(execution)
    spec = StepSpec(name=f"{options.name}.submit" if options.name else "$submit", retry=retry)
    await execution.call_step(spec, submit, (token,))
    return wait_token(execution, token, result_type)


def _duration(value: Duration, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ConfigurationError(f"{what} must be >= 0 seconds or None, got {value!r}")
    return seconds


def _execution(what: str) -> Execution:
    execution = current_execution()
    if execution is None or current_step() is not None:
        raise ConfigurationError(f"{what} can only be awaited inside a running task, not a step")
    return execution
