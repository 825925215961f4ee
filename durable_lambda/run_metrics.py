"""CloudWatch metrics of runs, steps and invocations: a plugin that writes Powertools EMF lines.

Every metric of a run carries the task id as its one dimension (never the run
id: a dimension per run would make unbounded metric streams and cost); run
counts are written under the service alone as well, for alarms across all
tasks; slot wait also per queue. What the scheduler and a token's resolver
see (overdue runs, dead letters, token wait) is service-wide. Values of one
task are gathered in memory during an invocation and written as one EMF line
per task by :meth:`RunMetrics.flush`, which the Lambda handlers call once per
invocation: a thousand steps cost one log line, not a thousand.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from durable_lambda.engine.observer import AttemptStatus
from durable_lambda.engine.state import RunStatus
from durable_lambda.plugins import EventInfo, EventOutcome

if TYPE_CHECKING:
    from durable_lambda.scheduler import TickReport

RUNS_TRIGGERED = "RunsTriggered"
RUNS_STARTED = "RunsStarted"
RUNS_COMPLETED = "RunsCompleted"
RUNS_FAILED = "RunsFailed"
RUNS_CANCELED = "RunsCanceled"
RUNS_EXPIRED = "RunsExpired"
RUN_HOPS = "RunHops"
INVOCATIONS = "Invocations"
INVOCATIONS_SUSPENDED = "InvocationsSuspended"
INVOCATION_DURATION = "InvocationDuration"
STEP_DURATION = "StepDuration"
STEP_RETRIES = "StepRetries"
STEPS_FAILED = "StepsFailed"
CHECKPOINT_BYTES = "CheckpointBytes"
RESUME_LAG = "ResumeLag"
SLOT_WAIT = "SlotWait"
TOKEN_WAIT = "TokenWait"  # noqa: S105 - a metric name, not a secret
DEAD_LETTERS = "DeadLetterArrivals"
OVERDUE_RUNS = "OverdueRuns"

#: Run counts, written per task and under the service alone (for alarms).
RUN_COUNTS = (
    RUNS_TRIGGERED,
    RUNS_STARTED,
    RUNS_COMPLETED,
    RUNS_FAILED,
    RUNS_CANCELED,
    RUNS_EXPIRED,
)
METRIC_NAMES = (
    *RUN_COUNTS,
    RUN_HOPS,
    INVOCATIONS,
    INVOCATIONS_SUSPENDED,
    INVOCATION_DURATION,
    STEP_DURATION,
    STEP_RETRIES,
    STEPS_FAILED,
    CHECKPOINT_BYTES,
    RESUME_LAG,
    SLOT_WAIT,
    TOKEN_WAIT,
    DEAD_LETTERS,
    OVERDUE_RUNS,
)
"""Every metric name this module emits (the dashboard may reference only these)."""
#: Written under the service alone (besides the run counts' service-wide copy):
#: the scheduler and a token's resolver know no task.
SERVICE_ONLY = (TOKEN_WAIT, DEAD_LETTERS, OVERDUE_RUNS)
#: Written per queue as well as per task.
PER_QUEUE = (SLOT_WAIT,)
#: The dimension of per-task metrics.
TASK_DIMENSION = "task_id"
#: The dimension of per-queue metrics (slot wait).
QUEUE_DIMENSION = "queue"

# CloudWatch keeps at most 100 values of one metric per EMF line; Powertools
# flushes on its own when a metric reaches that, so a long invocation is safe.

_RUN_ENDINGS = {
    RunStatus.COMPLETED.value: RUNS_COMPLETED,
    RunStatus.FAILED.value: RUNS_FAILED,
    RunStatus.CANCELED.value: RUNS_CANCELED,
    RunStatus.EXPIRED.value: RUNS_EXPIRED,
}

#: ``(dimension, value)`` of one EMF line's metrics; ``None``: the service alone.
_Dimension = tuple[str, str] | None


@dataclass(slots=True)
class RunMetrics:
    """A plugin that counts and times what a worker process does, per task.

    Register it with :func:`durable_lambda.plugins.register`; call
    :meth:`flush` at the end of each Lambda invocation.

    Attributes:
        namespace: The CloudWatch namespace.
        service: The ``service`` dimension Powertools adds to every metric.
    """

    namespace: str
    service: str
    _lines: dict[_Dimension, EphemeralMetrics] = field(default_factory=dict)
    _started: dict[tuple[str, str | None], float] = field(default_factory=dict)
    _written: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_run_triggered(self, info: EventInfo) -> None:
        """Count a run created by a trigger (one that found an existing run created none)."""
        self._count_run(info.task_id, RUNS_TRIGGERED)

    def on_invocation_start(self, info: EventInfo) -> None:
        """Count the invocation and how late it took the run; a first one starts the run."""
        self._started[(info.run_id, None)] = time.monotonic()
        self._add(info.task_id, INVOCATIONS, MetricUnit.Count, 1)
        if info.first_invocation:
            self._count_run(info.task_id, RUNS_STARTED)
        if info.resume_lag is not None:
            self._add(info.task_id, RESUME_LAG, MetricUnit.Milliseconds, info.resume_lag * 1000)
        if info.slot_wait is not None:
            wait_ms = info.slot_wait * 1000
            self._add(info.task_id, SLOT_WAIT, MetricUnit.Milliseconds, wait_ms)
            if info.queue:
                self._add_to(
                    (QUEUE_DIMENSION, info.queue), SLOT_WAIT, MetricUnit.Milliseconds, wait_ms
                )

    def on_invocation_end(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Time the invocation; count that it suspended the run."""
        began = self._started.pop((info.run_id, None), None)
        if began is not None:
            elapsed = (time.monotonic() - began) * 1000
            self._add(info.task_id, INVOCATION_DURATION, MetricUnit.Milliseconds, elapsed)
        if outcome.status is AttemptStatus.SUSPENDED:
            self._add(info.task_id, INVOCATIONS_SUSPENDED, MetricUnit.Count, 1)

    def on_run_end(self, info: EventInfo, status: str, hops: int) -> None:
        """Count how a run ended (once its terminal checkpoint is stored) and its hops."""
        ending = _RUN_ENDINGS.get(status)
        if ending is not None:
            self._count_run(info.task_id, ending)
        self._add(info.task_id, RUN_HOPS, MetricUnit.Count, hops)

    def on_checkpoint(self, info: EventInfo, size: int) -> None:
        """Add the bytes a write of a step's result or the run's output stored.

        Summed per task over the invocation and written as one value at
        :meth:`flush`: a thousand steps cost one value, not a thousand.
        """
        with self._lock:
            self._written[info.task_id] = self._written.get(info.task_id, 0) + size

    def on_step_start(self, info: EventInfo) -> None:
        """Note when the attempt began."""
        self._started[(info.run_id, info.step_key)] = time.monotonic()

    def on_attempt(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Time the attempt; count a retry or a step that failed for good."""
        began = self._started.pop((info.run_id, info.step_key), None)
        if began is not None:
            elapsed = (time.monotonic() - began) * 1000
            self._add(info.task_id, STEP_DURATION, MetricUnit.Milliseconds, elapsed)
        if outcome.status is AttemptStatus.RETRYING:
            self._add(info.task_id, STEP_RETRIES, MetricUnit.Count, 1)
        elif outcome.status is AttemptStatus.FAILED:
            self._add(info.task_id, STEPS_FAILED, MetricUnit.Count, 1)

    def on_token_resolved(self, run_id: str, status: str, waited: float) -> None:  # noqa: ARG002
        """Time how long a token was pending (service-wide: the resolver knows no task)."""
        self._add_to(None, TOKEN_WAIT, MetricUnit.Milliseconds, waited * 1000)

    def on_scheduler_tick(self, report: TickReport) -> None:
        """Count stuck runs and dead letters (service-wide: the alarms' view)."""
        self._add_to(None, OVERDUE_RUNS, MetricUnit.Count, report.overdue_runs)
        self._add_to(None, DEAD_LETTERS, MetricUnit.Count, report.dead_letters_read)

    def flush(self) -> None:
        """Write one EMF line per dimension that has values, and start afresh."""
        with self._lock:
            written, self._written = self._written, {}
        for task_id, size in written.items():
            self._add(task_id, CHECKPOINT_BYTES, MetricUnit.Bytes, size)
        with self._lock:
            pending, self._lines = self._lines, {}
            self._started.clear()  # an attempt cut off by the invocation's end is not timed
        for metrics in pending.values():
            metrics.flush_metrics()

    def _count_run(self, task_id: str, name: str) -> None:
        # Also under the service alone: one alarm then covers every task.
        self._add(task_id, name, MetricUnit.Count, 1)
        self._add_to(None, name, MetricUnit.Count, 1)

    def _add(self, task_id: str, name: str, unit: MetricUnit, value: float) -> None:
        self._add_to((TASK_DIMENSION, task_id), name, unit, value)

    def _add_to(self, dimension: _Dimension, name: str, unit: MetricUnit, value: float) -> None:
        with self._lock:
            metrics = self._lines.get(dimension)
            if metrics is None:
                metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
                if dimension is not None:
                    metrics.add_dimension(*dimension)
                self._lines[dimension] = metrics
            metrics.add_metric(name=name, unit=unit, value=value)
