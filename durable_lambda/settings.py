"""Settings, frozen, resolved as: explicit argument > environment variable > default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from durable_lambda.errors import ConfigurationError

# Environment variable names, in one place.
ENV_TABLE = "DL_TABLE_NAME"
ENV_BUCKET = "DL_BUCKET_NAME"
ENV_RESUME_QUEUE = "DL_RESUME_QUEUE_URL"
ENV_DLQ = "DL_DLQ_URL"
ENV_INLINE_LIMIT = "DL_INLINE_LIMIT_BYTES"
ENV_MAX_VALUE = "DL_MAX_VALUE_BYTES"
ENV_SHORT_WAIT = "DL_SHORT_WAIT_SECONDS"
ENV_MARGIN_MIN = "DL_SAFETY_MARGIN_SECONDS"
ENV_MARGIN_FRACTION = "DL_SAFETY_MARGIN_FRACTION"
ENV_MAX_HOPS = "DL_MAX_HOPS"
ENV_MAX_CHILD_DEPTH = "DL_MAX_CHILD_DEPTH"
ENV_RETENTION_DAYS = "DL_RETENTION_DAYS"
ENV_TASK_MODULES = "DL_TASK_MODULES"
ENV_FUNCTION_TIMEOUT = "DL_FUNCTION_TIMEOUT"
ENV_STRANDED_AFTER = "DL_STRANDED_AFTER_SECONDS"
ENV_TOKEN_RECHECK = "DL_TOKEN_RECHECK_SECONDS"  # noqa: S105 - a variable name, not a secret
ENV_API_BASE_URL = "DL_API_BASE_URL"
ENV_API_CURSOR_KEY = "DL_API_CURSOR_KEY"
ENV_CALLBACK_KEY = "DL_CALLBACK_KEY"

#: DynamoDB refuses items above 400 KB; an inline value must leave room for the
#: rest of its item.
DYNAMODB_ITEM_LIMIT = 400 * 1024
MAX_INLINE_LIMIT = 350 * 1024

_ENV_OF = {
    "table_name": ENV_TABLE,
    "bucket_name": ENV_BUCKET,
    "resume_queue_url": ENV_RESUME_QUEUE,
    "dlq_url": ENV_DLQ,
    "inline_limit": ENV_INLINE_LIMIT,
    "max_value_bytes": ENV_MAX_VALUE,
    "short_wait_seconds": ENV_SHORT_WAIT,
    "safety_margin_seconds": ENV_MARGIN_MIN,
    "safety_margin_fraction": ENV_MARGIN_FRACTION,
    "max_hops": ENV_MAX_HOPS,
    "retention_days": ENV_RETENTION_DAYS,
    "task_modules": ENV_TASK_MODULES,
    "function_timeout": ENV_FUNCTION_TIMEOUT,
    "stranded_after_seconds": ENV_STRANDED_AFTER,
    "max_child_depth": ENV_MAX_CHILD_DEPTH,
    "token_recheck_seconds": ENV_TOKEN_RECHECK,
    "api_base_url": ENV_API_BASE_URL,
    "api_cursor_key": ENV_API_CURSOR_KEY,
    "callback_key": ENV_CALLBACK_KEY,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime settings.

    Attributes:
        table_name: The DynamoDB table holding runs, journals, queues and timers.
        bucket_name: The S3 bucket for values above ``inline_limit``.
        resume_queue_url: The SQS queue that re-invokes the worker.
        dlq_url: Its dead-letter queue.
        inline_limit: Values up to this many bytes are stored in the DynamoDB item.
        max_value_bytes: Larger values fail with ``PayloadTooLarge``.
        short_wait_seconds: Waits up to this long sleep in-process.
        safety_margin_seconds: Minimum seconds before the Lambda deadline at
            which no new step starts (the margin is ``max(this, fraction * timeout)``).
        safety_margin_fraction: See ``safety_margin_seconds``.
        max_hops: Invocations one run may chain through before it fails.
        retention_days: Days a finished run is kept (DynamoDB TTL).
        task_modules: Modules the worker imports so their ``@task``s register.
        function_timeout: The worker function's configured timeout in seconds
            (the safety margin is derived from it).
        stranded_after_seconds: A QUEUED or SUSPENDED run this long past its due
            time lost its resume message; the scheduler sends it again.
        max_child_depth: How deep child tasks may nest (a run triggered from
            outside is at depth 0); a trigger beyond it raises ``ChildDepthExceeded``.
        token_recheck_seconds: A run waiting on a wait token with no nearer
            deadline reads it again after this long, so a completion whose
            nudge was lost (the completer died between its write and its
            message) still wakes the run.
        api_base_url: The HTTP API's base URL; a wait token's ``url`` is
            ``<api_base_url>/tokens/<id>/complete`` (empty: tokens have no URL).
        api_cursor_key: The HTTP API's key for signing listing cursors (the
            template passes a generated secret). Empty: a random key per
            process, so cursors then only work against the process that issued them.
        callback_key: The key each wait token's callback secret is derived from
            (HMAC-SHA256 of the token id), so the secret is stored nowhere: the
            token keeps only its hash, and a replay derives the same URL. The
            template passes a generated secret to the worker. Empty: a random
            key per process (tokens created by one process then have callback
            URLs another process cannot derive again).
    """

    table_name: str = "durable-lambda"
    bucket_name: str = "durable-lambda-values"
    resume_queue_url: str = ""
    dlq_url: str = ""
    inline_limit: int = 64 * 1024
    max_value_bytes: int = 10 * 1024 * 1024
    short_wait_seconds: float = 1.0
    safety_margin_seconds: float = 10.0
    safety_margin_fraction: float = 0.1
    max_hops: int = 10_000
    retention_days: int = 30
    task_modules: tuple[str, ...] = ()
    function_timeout: float = 900.0
    stranded_after_seconds: float = 120.0
    max_child_depth: int = 20
    token_recheck_seconds: float = 21600.0
    api_base_url: str = ""
    api_cursor_key: str = field(default="", repr=False)
    callback_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        """Reject settings that would break storage or chaining."""
        if not 0 < self.inline_limit <= MAX_INLINE_LIMIT:
            raise ConfigurationError(
                f"inline_limit must be 1..{MAX_INLINE_LIMIT} bytes (DynamoDB items stop at "
                f"{DYNAMODB_ITEM_LIMIT}), got {self.inline_limit}"
            )
        if self.max_value_bytes < self.inline_limit:
            raise ConfigurationError(
                f"max_value_bytes ({self.max_value_bytes}) must be >= inline_limit "
                f"({self.inline_limit})"
            )
        if self.max_hops < 1:
            raise ConfigurationError(f"max_hops must be >= 1, got {self.max_hops}")
        if self.max_child_depth < 0:
            raise ConfigurationError(f"max_child_depth must be >= 0, got {self.max_child_depth}")
        if self.token_recheck_seconds <= 0:
            raise ConfigurationError(
                f"token_recheck_seconds must be > 0, got {self.token_recheck_seconds}"
            )
        if not 0 <= self.safety_margin_fraction < 1:
            raise ConfigurationError(
                f"safety_margin_fraction must be in [0, 1), got {self.safety_margin_fraction}"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings: ``overrides`` > environment variables > defaults."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides.pop(f.name)
                continue
            raw = source.get(_ENV_OF[f.name])
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, _ENV_OF[f.name], raw, f.type)
        if overrides:
            raise ConfigurationError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)


def _parse(name: str, env_name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"{env_name}={raw!r} is not a valid {kind} for {name}") from None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
