"""Queue configuration: where runs line up and how many run at once."""

from __future__ import annotations

import re
from dataclasses import dataclass

from durable_lambda.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` run starts per ``period`` seconds (per concurrency key when keyed).

    Attributes:
        limit: Starts admitted per period.
        period: The window in seconds.
    """

    limit: int
    period: float

    def __post_init__(self) -> None:
        """Reject empty or negative windows."""
        if self.limit < 1:
            raise ConfigurationError(f"RateLimit.limit must be >= 1, got {self.limit}")
        if self.period <= 0:
            raise ConfigurationError(f"RateLimit.period must be > 0 seconds, got {self.period}")


@dataclass(frozen=True, slots=True)
class Queue:
    """A named queue with an optional concurrency limit (Trigger.dev's ``concurrencyLimit``).

    Attributes:
        name: Letters, digits and ``_.:-``, at most 80 characters.
        concurrency_limit: Runs of this queue (or of one concurrency key on it)
            executing at once; ``None`` means unlimited.
        rate_limit: Optional cap on run starts per period.
    """

    name: str
    concurrency_limit: int | None = None
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        """Validate the name and limit so a typo fails at import, not in production."""
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"Queue.name {self.name!r} must be 1-80 characters of letters, digits and _.:-"
            )
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise ConfigurationError(
                f"Queue.concurrency_limit must be >= 1 or None, got {self.concurrency_limit}"
            )
