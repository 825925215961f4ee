"""Polling: how long a run waits between checks of an outside condition. Pure."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from durable_lambda.engine.retry import RandomSource
from durable_lambda.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class WaitStrategy:
    """How ``wait.for_condition`` spaces its checks.

    The delay after check ``n`` (1-based) is ``initial_delay * factor ** (n - 1)``,
    capped at ``max_delay``. Each delay is recorded with the wait it starts, so
    a replay waits exactly as the live run did, jitter included.

    Attributes:
        initial_delay: Seconds between the first check and the second.
        factor: Growth of the delay from one check to the next (1: constant).
        max_delay: Upper bound in seconds for any delay.
        max_attempts: Checks made at most, the first included; when the last
            one still does not meet the condition, ``ConditionNotMetError``.
        randomize: Full jitter: each delay is drawn uniformly in ``[0, delay]``,
            so many runs polling the same system do not check in lockstep.
    """

    initial_delay: float = 5.0
    factor: float = 1.5
    max_delay: float = 300.0
    max_attempts: int = 60
    randomize: bool = False

    def __post_init__(self) -> None:
        """Reject values that would make the strategy meaningless."""
        for name in ("initial_delay", "factor", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"WaitStrategy.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigurationError(f"WaitStrategy.{name} must be finite, got {value}")
        if self.initial_delay < 0:
            raise ConfigurationError(
                f"WaitStrategy.initial_delay must be >= 0 seconds, got {self.initial_delay}"
            )
        if self.factor < 1:
            raise ConfigurationError(f"WaitStrategy.factor must be >= 1, got {self.factor}")
        if self.max_delay < self.initial_delay:
            raise ConfigurationError(
                f"WaitStrategy.max_delay ({self.max_delay}) must be >= "
                f"initial_delay ({self.initial_delay})"
            )
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError(
                f"WaitStrategy.max_attempts must be an int, got {self.max_attempts!r}"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"WaitStrategy.max_attempts must be >= 1, got {self.max_attempts}"
            )

    def delay(self, check: int, rng: RandomSource | None = None) -> float:
        """Seconds to wait after check number ``check`` (1-based) before the next one."""
        if check < 1:
            raise ValueError(f"check is 1-based, got {check}")
        # A large factor ** n overflows a float long before it matters: the cap applies.
        try:
            grown = self.initial_delay * self.factor ** (check - 1)
        except OverflowError:
            grown = self.max_delay
        ceiling = min(self.max_delay, grown)
        if not self.randomize:
            return ceiling
        return ceiling * (rng or random).random()
