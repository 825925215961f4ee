"""Powertools wiring: one structured logger, the run metrics plugin and their standard keys.

Logs carry run ids, task ids, statuses and counts, never payloads or outputs.
Metrics carry the task id as their only dimension, never a run id.
"""

from __future__ import annotations

import os
import time

from aws_lambda_powertools import Logger, Tracer

from durable_lambda import plugins
from durable_lambda.plugins import EventInfo, EventOutcome
from durable_lambda.run_metrics import RunMetrics
from durable_lambda.run_traces import RunTraces

SERVICE = "durable-lambda"
#: The CloudWatch namespace when ``POWERTOOLS_METRICS_NAMESPACE`` is not set.
DEFAULT_NAMESPACE = "DurableLambda"

logger = Logger(service=SERVICE)

_metrics: RunMetrics | None = None
_step_lines: StepLines | None = None
_traces: RunTraces | None = None


def run_metrics() -> RunMetrics:
    """The process's metrics plugin, registered on first use; flush it once per invocation."""
    global _metrics  # noqa: PLW0603 - one plugin per Lambda execution environment
    if _metrics is None:
        _metrics = RunMetrics(
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
        )
    return plugins.register(_metrics)  # again if someone unregistered it: it costs a scan


class StepLines:
    """A plugin that writes one log line per step attempt: the run's timeline in CloudWatch.

    Each line names the run, task, step key, scope, attempt, how it ended, how
    long it took and the error type; never arguments, results or error messages
    (they may hold user data). ``POWERTOOLS_LOG_LEVEL=WARNING`` turns them off.
    """

    def __init__(self) -> None:
        """Start with no attempt in flight."""
        self._started: dict[tuple[str, str | None], float] = {}

    def on_invocation_start(self, info: EventInfo) -> None:
        """Every line until the invocation ends carries the run's task and attempt."""
        logger.append_keys(task_id=info.task_id, attempt=info.attempt)

    def on_invocation_end(self, info: EventInfo, outcome: EventOutcome) -> None:  # noqa: ARG002
        """The next message's lines are another run's."""
        logger.remove_keys(["task_id", "attempt"])

    def on_step_start(self, info: EventInfo) -> None:
        """Note when the attempt began."""
        self._started[(info.run_id, info.step_key)] = time.monotonic()

    def on_attempt(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Write the attempt's line (its ``attempt`` is the step's)."""
        began = self._started.pop((info.run_id, info.step_key), None)
        duration = None if began is None else round((time.monotonic() - began) * 1000, 3)
        logger.info(
            "step attempt",
            extra={
                "run_id": info.run_id,
                "task_id": info.task_id,
                "step": info.step_key,
                "scope": info.scope,
                "attempt": info.attempt,
                "outcome": outcome.status.value,
                "duration_ms": duration,
                "error_type": None if outcome.error is None else outcome.error.type,
            },
        )


def step_lines() -> StepLines:
    """The process's step-line plugin, registered on first use."""
    global _step_lines  # noqa: PLW0603 - one plugin per Lambda execution environment
    if _step_lines is None:
        _step_lines = StepLines()
    return plugins.register(_step_lines)


def run_traces() -> RunTraces:
    """The process's X-Ray plugin, registered on first use (a no-op where tracing is off).

    Powertools turns tracing off outside Lambda and with ``POWERTOOLS_TRACE_DISABLED``.
    """
    global _traces  # noqa: PLW0603 - one plugin per Lambda execution environment
    if _traces is None:
        _traces = RunTraces(
            Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE).provider
        )
    return plugins.register(_traces)
