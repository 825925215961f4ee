"""durable-lambda: durable execution for Python on plain AWS Lambda.

The curated public API, re-exported from the modules that own each name; inside
the package, modules import each other by their own paths, never these names.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from durable_lambda import plugins, tokens, wait
from durable_lambda.api_client import ApiClient, ApiRequestError
from durable_lambda.client import Client, RunHandle
from durable_lambda.context import TaskContext
from durable_lambda.cron import ScheduledPayload
from durable_lambda.engine.batch import (
    BatchFailedError,
    BatchItem,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    ItemStatus,
)
from durable_lambda.engine.polling import WaitStrategy
from durable_lambda.engine.records import RunQuery, RunRecord
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    AbortRun,
    ConfigurationError,
    DurableLambdaError,
    NonDeterminismError,
    PayloadTooLarge,
    PayloadValidationError,
    RetryableError,
    RetryAfter,
    RunFinishedError,
    RunNotFoundError,
    StepFailedError,
    StepInterruptedError,
    SuspendSwallowedError,
    TerminalError,
    TokenAlreadyResolvedError,
    TokenFailedError,
    TokenNotFoundError,
    TokenTimeoutError,
)
from durable_lambda.queue import Queue, RateLimit
from durable_lambda.redaction import redact_log_fields
from durable_lambda.result import RunFailedError, RunResult
from durable_lambda.services import default_client as _default_client
from durable_lambda.settings import Settings
from durable_lambda.step import step
from durable_lambda.task import Task, set_default_trigger, task
from durable_lambda.transact import Condition, Transaction

__all__ = [
    "AbortRun",
    "ApiClient",
    "ApiRequestError",
    "BatchFailedError",
    "BatchItem",
    "BatchResult",
    "Client",
    "CompletionConfig",
    "CompletionReason",
    "Condition",
    "ConfigurationError",
    "DurableLambdaError",
    "ItemStatus",
    "NonDeterminismError",
    "PayloadTooLarge",
    "PayloadValidationError",
    "Queue",
    "RateLimit",
    "RetryAfter",
    "RetryPolicy",
    "RetryableError",
    "RunFailedError",
    "RunFinishedError",
    "RunHandle",
    "RunNotFoundError",
    "RunQuery",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "ScheduledPayload",
    "Settings",
    "StepFailedError",
    "StepInterruptedError",
    "SuspendSwallowedError",
    "Task",
    "TaskContext",
    "TerminalError",
    "TokenAlreadyResolvedError",
    "TokenFailedError",
    "TokenNotFoundError",
    "TokenTimeoutError",
    "Transaction",
    "WaitStrategy",
    "plugins",
    "redact_log_fields",
    "step",
    "task",
    "tokens",
    "wait",
]

# The one seam between Task.trigger and the runtime (task.py cannot import the client).
set_default_trigger(_default_client)


def _version() -> str:
    # One source of truth: the version pyproject.toml gave the installed
    # distribution. A source checkout that was never installed has none.
    try:
        return _distribution_version("durable-lambda")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
