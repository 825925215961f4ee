"""Powertools wiring: one structured logger, the run metrics plugin and their standard keys.

Logs carry run ids, task ids, statuses and counts, never payloads or outputs.
Metrics carry the task id as their only dimension, never a run id.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

from durable_lambda import plugins
from durable_lambda.run_metrics import RunMetrics

SERVICE = "durable-lambda"
#: The CloudWatch namespace when ``POWERTOOLS_METRICS_NAMESPACE`` is not set.
DEFAULT_NAMESPACE = "DurableLambda"

logger = Logger(service=SERVICE)

_metrics: RunMetrics | None = None


def run_metrics() -> RunMetrics:
    """The process's metrics plugin, registered on first use; flush it once per invocation."""
    global _metrics  # noqa: PLW0603 - one plugin per Lambda execution environment
    if _metrics is None:
        _metrics = plugins.register(
            RunMetrics(
                namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
                service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
            )
        )
    return _metrics
