"""The real clock: UTC wall time, monotonic time and asyncio sleep."""

from __future__ import annotations

import asyncio
import datetime as dt
import time


class SystemClock:
    """Time as the machine tells it."""

    def now(self) -> dt.datetime:
        """The current UTC time."""
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the event loop."""
        await asyncio.sleep(seconds)
