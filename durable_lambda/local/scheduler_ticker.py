"""An EventBridge schedule rule: invoke a function every ``interval`` seconds."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from durable_lambda.local.moto_server import DEFAULT_REGION, MOTO_ACCOUNT_ID
from durable_lambda.local.process_pool import FunctionPool, InvocationResult, PoolClosedError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickerStats:
    """Counters of a ticker.

    Attributes:
        ticks: Invocations made.
        errors: Invocations that failed or timed out.
    """

    ticks: int = 0
    errors: int = 0


def scheduled_event(rule_name: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The event EventBridge sends a target of a ``rate(...)`` rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": MOTO_ACCOUNT_ID,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{MOTO_ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class SchedulerTicker:
    """Invokes ``pool``'s function every ``interval`` seconds, one tick at a time.

    A tick that overruns the interval delays the next one (EventBridge would
    start another invocation; the scheduler is written to tolerate either).

    Args:
        pool: The scheduler function.
        interval: Seconds between ticks (EventBridge's ``rate(1 minute)`` is 60).
        rule_name: Named in the event's ``resources``.
        region: The event's region.
    """

    def __init__(
        self,
        pool: FunctionPool,
        interval: float = 60.0,
        *,
        rule_name: str = "durable-lambda-scheduler",
        region: str = DEFAULT_REGION,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self._pool = pool
        self.interval = interval
        self.rule_name = rule_name
        self.region = region
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ticks = 0
        self._errors = 0
        self.last_result: InvocationResult | None = None

    @property
    def stats(self) -> TickerStats:
        """A snapshot of the counters."""
        with self._lock:
            return TickerStats(ticks=self._ticks, errors=self._errors)

    def tick(self) -> InvocationResult:
        """Invoke the function once, now."""
        result = self._pool.invoke(scheduled_event(self.rule_name, self.region))
        with self._lock:
            self._ticks += 1
            self._errors += 0 if result.ok else 1
            self.last_result = result
        if not result.ok:
            _log.warning("scheduler tick failed: %s", result.error)
        return result

    def start(self) -> None:
        """Tick every ``interval`` seconds, the first after one interval (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scheduler-ticker", daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the thread to stop after the current tick."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except PoolClosedError:
                return
