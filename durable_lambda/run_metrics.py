"""CloudWatch metrics of runs, steps and invocations: a plugin that writes Powertools EMF lines.

Every metric carries the task id as its one dimension (never the run id: a
dimension per run would make unbounded metric streams and cost); run counts
are written under the service alone as well, for alarms across all tasks. Values of one
task are gathered in memory during an invocation and written as one EMF line
per task by :meth:`RunMetrics.flush`, which the Lambda handlers call once per
invocation: a thousand steps cost one log line, not a thousand.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from durable_lambda.engine.observer import AttemptStatus
from durable_lambda.plugins import EventInfo, EventOutcome

#: The metric names this module emits (the dashboard may reference only these).
RUNS_STARTED = "RunsStarted"
RUNS_COMPLETED = "RunsCompleted"
RUNS_FAILED = "RunsFailed"
INVOCATIONS = "Invocations"
INVOCATIONS_SUSPENDED = "InvocationsSuspended"
INVOCATION_DURATION = "InvocationDuration"
STEP_DURATION = "StepDuration"
STEP_RETRIES = "StepRetries"
STEPS_FAILED = "StepsFailed"

METRIC_NAMES = (
    RUNS_STARTED,
    RUNS_COMPLETED,
    RUNS_FAILED,
    INVOCATIONS,
    INVOCATIONS_SUSPENDED,
    INVOCATION_DURATION,
    STEP_DURATION,
    STEP_RETRIES,
    STEPS_FAILED,
)
#: The one dimension every metric carries.
TASK_DIMENSION = "task_id"

# CloudWatch keeps at most 100 values of one metric per EMF line; Powertools
# flushes on its own when a metric reaches that, so a long invocation is safe.

_RUN_ENDINGS = {
    AttemptStatus.SUCCEEDED: RUNS_COMPLETED,
    AttemptStatus.FAILED: RUNS_FAILED,
}


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
    _per_task: dict[str | None, EphemeralMetrics] = field(default_factory=dict)
    _started: dict[tuple[str, str | None], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_invocation_start(self, info: EventInfo) -> None:
        """Count the invocation; a run's first one starts the run."""
        self._started[(info.run_id, None)] = time.monotonic()
        self._add(info.task_id, INVOCATIONS, MetricUnit.Count, 1)
        if info.first_invocation:
            self._count_run(info.task_id, RUNS_STARTED)

    def on_invocation_end(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Time the invocation; count how the run ended, or that it suspended."""
        began = self._started.pop((info.run_id, None), None)
        if began is not None:
            elapsed = (time.monotonic() - began) * 1000
            self._add(info.task_id, INVOCATION_DURATION, MetricUnit.Milliseconds, elapsed)
        ending = _RUN_ENDINGS.get(outcome.status)
        if ending is not None:
            self._count_run(info.task_id, ending)
        elif outcome.status is AttemptStatus.SUSPENDED:
            self._add(info.task_id, INVOCATIONS_SUSPENDED, MetricUnit.Count, 1)

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

    def flush(self) -> None:
        """Write one EMF line per task that has values, and start afresh."""
        with self._lock:
            pending, self._per_task = self._per_task, {}
            self._started.clear()  # an attempt cut off by the invocation's end is not timed
        for metrics in pending.values():
            metrics.flush_metrics()

    def _count_run(self, task_id: str, name: str) -> None:
        # Also under the service alone: one alarm then covers every task.
        self._add(task_id, name, MetricUnit.Count, 1)
        self._add(None, name, MetricUnit.Count, 1)

    def _add(self, task_id: str | None, name: str, unit: MetricUnit, value: float) -> None:
        with self._lock:
            metrics = self._per_task.get(task_id)
            if metrics is None:
                metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
                if task_id is not None:
                    metrics.add_dimension(TASK_DIMENSION, task_id)
                self._per_task[task_id] = metrics
            metrics.add_metric(name=name, unit=unit, value=value)
