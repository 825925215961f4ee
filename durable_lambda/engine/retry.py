"""Retry policy: the maths of when, and whether, to try again. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from durable_lambda.errors import ConfigurationError, RetryAfter, TerminalError


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
    """

    max_attempts: int = 3
    factor: float = 2.0
    min_timeout: float = 1.0
    max_timeout: float = 60.0
    randomize: bool = True

    def __post_init__(self) -> None:
        """Reject values that would make the policy meaningless."""
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
        delay = self.backoff(attempt, rng)
        return RetryDecision(
            retry=True, delay=delay, reason=f"attempt {attempt} of {self.max_attempts} failed"
        )
