"""Retry policy: the maths of when, and whether, to try again. Pure."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from durable_lambda.errors import ConfigurationError, RetryAfter, TerminalError

RetryOn: TypeAlias = tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""Which errors a policy retries: exception types, or a predicate ``(error) -> bool``."""


class RandomSource(Protocol):
    """The slice of :class:`random.Random` the policy needs (injectable for tests)."""

    def random(self) -> float:
        """Return a float in [0, 1)."""
        ...


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        retry: Whether another attempt follows.
        delay: Seconds to wait before it (0 when ``retry`` is false).
        reason: A short human explanation, recorded in the run's timeline.
    """

    retry: bool
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing step or task is retried. Names follow Trigger.dev's, in snake_case.

    Attributes:
        max_attempts: Total attempts including the first; 1 means never retry.
        factor: Growth of the delay between attempts (exponential backoff).
        min_timeout: Delay in seconds before the second attempt.
        max_timeout: Upper bound in seconds for any delay.
        randomize: Full jitter: pick the delay uniformly in ``[min_timeout, delay]``
            so retries of many runs do not stampede together.
        retry_on: Only these errors are retried: a tuple of exception types or a
            predicate ``(error) -> bool`` (``None``: every non-terminal error).
            Any other error fails at once. ``RetryAfter`` is an explicit request
            and is always honoured.
    """

    max_attempts: int = 3
    factor: float = 2.0
    min_timeout: float = 1.0
    max_timeout: float = 60.0
    randomize: bool = True
    retry_on: RetryOn | None = None

    def __post_init__(self) -> None:
        """Reject values that would make the policy meaningless."""
        _check_retry_on(self.retry_on)
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}"
            )
        if self.factor < 1:
            raise ConfigurationError(f"RetryPolicy.factor must be >= 1, got {self.factor}")
        if self.min_timeout < 0:
            raise ConfigurationError(
                f"RetryPolicy.min_timeout must be >= 0, got {self.min_timeout}"
            )
        if self.max_timeout < self.min_timeout:
            raise ConfigurationError(
                f"RetryPolicy.max_timeout ({self.max_timeout}) must be >= "
                f"min_timeout ({self.min_timeout})"
            )

    def backoff(self, attempt: int, rng: RandomSource | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``min_timeout * factor ** (attempt - 1)``, capped at ``max_timeout``; with
        ``randomize`` a uniform draw between ``min_timeout`` and that value.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        ceiling = min(self.max_timeout, self.min_timeout * self.factor ** (attempt - 1))
        if not self.randomize:
            return ceiling
        draw = (rng or random).random()
        return self.min_timeout + (ceiling - self.min_timeout) * draw

    def retries(self, error: BaseException) -> bool:
        """Whether ``retry_on`` lets ``error`` be retried (attempts aside)."""
        if self.retry_on is None:
            return True
        if isinstance(self.retry_on, tuple):
            return isinstance(error, self.retry_on)
        return bool(self.retry_on(error))

    def decide(
        self, attempt: int, error: BaseException, rng: RandomSource | None = None
    ) -> RetryDecision:
        """Decide what follows failed attempt ``attempt`` that raised ``error``."""
        if isinstance(error, TerminalError):
            return RetryDecision(
                retry=False, delay=0.0, reason=f"{type(error).__name__} is terminal"
            )
        if attempt >= self.max_attempts:
            return RetryDecision(
                retry=False, delay=0.0, reason=f"attempt {attempt} of {self.max_attempts} failed"
            )
        if isinstance(error, RetryAfter):
            return RetryDecision(retry=True, delay=error.seconds, reason="RetryAfter requested")
        if not self.retries(error):
            return RetryDecision(
                retry=False, delay=0.0, reason=f"{type(error).__name__} is not in retry_on"
            )
        delay = self.backoff(attempt, rng)
        return RetryDecision(
            retry=True, delay=delay, reason=f"attempt {attempt} of {self.max_attempts} failed"
        )


def _check_retry_on(retry_on: object) -> None:
    """Reject a ``retry_on`` that is neither exception types nor a one-argument predicate."""
    if retry_on is None:
        return
    if isinstance(retry_on, tuple):
        if not retry_on:
            raise ConfigurationError(
                "RetryPolicy.retry_on must name at least one exception type (or be None)"
            )
        for kind in retry_on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ConfigurationError(
                    f"RetryPolicy.retry_on must hold exception types, got {kind!r}"
                )
        return
    if isinstance(retry_on, type) or not callable(retry_on):
        raise ConfigurationError(
            "RetryPolicy.retry_on must be a tuple of exception types or a predicate "
            f"(error) -> bool, got {retry_on!r}"
        )
    try:
        inspect.signature(retry_on).bind(ValueError())
    except TypeError as exc:
        raise ConfigurationError(
            f"RetryPolicy.retry_on predicate {retry_on!r} must take one argument (the error)"
        ) from exc
    except ValueError:
        return  # no signature to inspect (a builtin): trust it
