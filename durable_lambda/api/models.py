"""The HTTP API's request and response bodies (pydantic: validated in, documented in OpenAPI).

Run views are shared with ``durable_lambda.runs`` (:mod:`durable_lambda.views`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from durable_lambda.catalog import TaskDescription
from durable_lambda.client import MAX_KEY_LENGTH, MAX_TAG_LENGTH, MAX_TAGS
from durable_lambda.engine.slots import MAX_PRIORITY, MIN_PRIORITY
from durable_lambda.views import RunSummary

#: The most items one batch request may carry.
MAX_BATCH = 1000
#: Seconds: a delay or ttl beyond a year is a mistake, not a plan.
MAX_SECONDS = 366 * 24 * 3600.0

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]


class TriggerOptions(BaseModel):
    """How to start a run; every field optional."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: Key | None = None
    idempotency_key_ttl: Seconds | None = None
    delay: Seconds | None = None
    ttl: Seconds | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    concurrency_key: Key | None = None
    priority: Annotated[int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)] = 0
    queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")] | None = None
    metadata: dict[str, Any] | None = None


class TriggerRequest(TriggerOptions):
    """``POST /tasks/{task_id}/runs``: the payload (checked against its task's schema), options."""

    payload: Any = None


class TriggerResponse(BaseModel):
    """A triggered run; ``existing``: the idempotency key named an earlier run."""

    run_id: str
    task_id: str
    existing: bool = False


class BatchRequest(BaseModel):
    """``POST /tasks/{task_id}/batch``: up to 1,000 runs of one task."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[TriggerRequest], Field(min_length=1, max_length=MAX_BATCH)]


class ReplayRequest(BaseModel):
    """``POST /runs/{run_id}/replay``: a new run of the same task, linked to the original.

    ``payload`` absent or ``null`` keeps the original payload. With ``from_step``
    the original's journal before that step is copied: those steps are not
    executed again and keep their recorded results, even with a new payload.
    """

    model_config = ConfigDict(extra="forbid")

    payload: Any = None
    from_step: Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)] | None = None


class ReplayResponse(BaseModel):
    """The replay: its new run, and the run it replays."""

    run_id: str
    task_id: str
    replay_of: str


class ErrorDetail(BaseModel):
    """The error shape of every route: ``{"error": {"type", "message", "details"}}``."""

    type: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class BatchItemResult(BaseModel):
    """One item's outcome: its run, or its error (with the status it would have had alone)."""

    index: int
    status: int
    run_id: str | None = None
    existing: bool = False
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    """Per-item results, in request order."""

    task_id: str
    created: int
    results: list[BatchItemResult]


class TaskList(BaseModel):
    """``GET /tasks``: the catalog."""

    tasks: list[TaskDescription]


class QueueView(BaseModel):
    """A queue (or one concurrency key of it): its limit and what it holds now."""

    name: str
    concurrency_key: str | None = None
    code_limit: int | None = None
    limit_override: int | None = None
    limit: int | None = None
    paused: bool = False
    running: int = 0
    waiting: int = 0


class QueueList(BaseModel):
    """``GET /queues``."""

    queues: list[QueueView]


class QueueControl(BaseModel):
    """``POST /queues/{name}/pause|resume``: optionally one concurrency key only."""

    model_config = ConfigDict(extra="forbid")

    concurrency_key: Key | None = None


class QueueLimit(QueueControl):
    """``POST /queues/{name}/limit``: override the code's limit (``null``: back to it)."""

    limit: Annotated[int, Field(ge=1, le=100_000)] | None


__all__ = [
    "MAX_BATCH",
    "BatchItemResult",
    "BatchRequest",
    "BatchResponse",
    "ErrorBody",
    "ErrorDetail",
    "QueueControl",
    "QueueLimit",
    "QueueList",
    "QueueView",
    "ReplayRequest",
    "ReplayResponse",
    "RunSummary",
    "TaskList",
    "TriggerOptions",
    "TriggerRequest",
    "TriggerResponse",
]
