"""A clock for tests: real time passes, waits are skipped."""

from __future__ import annotations

import datetime as dt
import threading
import time


class SkipClock:
    """Real time plus an offset that grows whenever a wait is skipped.

    Step bodies take the time they really take (so a simulated Lambda deadline
    behaves), while ``sleep`` and :meth:`advance` jump ahead instantly.
    """

    def __init__(self, start: dt.datetime | None = None, *, frozen: bool = False) -> None:
        """Start at ``start`` (default: now); ``frozen`` moves only on skips and :meth:`advance`.

        A frozen clock suits tests that count what falls in a time range (cron
        occurrences): real seconds passing under load cannot add one.
        """
        self._frozen = frozen
        self._lock = threading.Lock()
        self._offset = 0.0
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        base = start or dt.datetime.now(dt.UTC)
        self._base = base if base.tzinfo else base.replace(tzinfo=dt.UTC)

    def _elapsed(self) -> float:
        real = 0.0 if self._frozen else time.monotonic() - self._mono0
        return real + self._offset

    def now(self) -> dt.datetime:
        """The simulated current time."""
        return self._base + dt.timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        """Simulated monotonic seconds (jumps with skipped waits)."""
        # Asked twice per step (the time left before the deadline): kept to one call.
        real = self._mono0 if self._frozen else time.monotonic()
        return real + self._offset

    def advance(self, seconds: float) -> None:
        """Jump ahead ``seconds`` instantly."""
        if seconds < 0:
            raise ValueError(f"cannot go back in time ({seconds} s)")
        with self._lock:
            self._offset += seconds

    def advance_to(self, when: dt.datetime) -> None:
        """Jump to ``when`` if it is in the future."""
        delta = (when - self.now()).total_seconds()
        if delta > 0:
            self.advance(delta)

    async def sleep(self, seconds: float) -> None:
        """Skip the wait."""
        self.advance(max(0.0, seconds))
