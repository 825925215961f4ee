"""The resume queue in memory: a heap ordered by delivery time."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
from collections.abc import Sequence

from durable_lambda.engine.records import ResumeMessage
from durable_lambda.engine.resume import MAX_DELAY_SECONDS
from durable_lambda.errors import ConfigurationError


class MemoryResumeQueue:
    """Resume messages in a heap ordered by delivery time (no visibility timeout)."""

    def __init__(self, clock_now: object) -> None:
        """Deliver relative to ``clock_now()`` (a callable returning an aware datetime)."""
        self._now = clock_now
        self._heap: list[tuple[dt.datetime, int, ResumeMessage]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, message: ResumeMessage, delay_seconds: int = 0) -> None:
        """Queue ``message`` for ``now + delay_seconds``."""
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:  # SQS's limit, enforced alike
            raise ConfigurationError(
                f"delay_seconds must be 0..{MAX_DELAY_SECONDS}, got {delay_seconds}"
            )
        due = self._now() + dt.timedelta(seconds=delay_seconds)  # type: ignore[operator]
        with self._lock:
            self.sent += 1
            heapq.heappush(self._heap, (due, next(self._seq), message))

    def send_batch(self, messages: Sequence[ResumeMessage], delay_seconds: int = 0) -> None:
        """Queue each of ``messages`` for ``now + delay_seconds``."""
        for message in messages:
            self.send(message, delay_seconds)

    def next_due(self) -> dt.datetime | None:
        """When the earliest message becomes visible, or ``None`` when empty."""
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def receive(self, now: dt.datetime, max_messages: int = 10) -> list[ResumeMessage]:
        """Pop up to ``max_messages`` messages due by ``now``."""
        out: list[ResumeMessage] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now and len(out) < max_messages:
                out.append(heapq.heappop(self._heap)[2])
        return out

    def __len__(self) -> int:
        """Messages waiting."""
        with self._lock:
            return len(self._heap)
