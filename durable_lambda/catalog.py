"""The task catalog: each deployed task's description, so any process can trigger it by id.

A worker or API function publishes its tasks when it starts (:func:`publish`):
id, payload and output JSON Schema (from the annotations, through pydantic),
queue and limits, retry policy, cron and a version hash of the code. The write
is keyed by that hash, so an unchanged cold start reads the catalog once and
writes nothing. A process that does not import a task's code finds it here:
:class:`CatalogTask` validates a payload against the stored schema (jsonschema)
before any run exists.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from durable_lambda import serde
from durable_lambda.errors import ConfigurationError, PayloadValidationError
from durable_lambda.queue import Queue, RateLimit
from durable_lambda.task import Task, TaskRegistry

__all__ = [
    "CatalogStore",
    "CatalogTask",
    "QueueDescription",
    "RetryDescription",
    "TaskDescription",
    "describe",
    "publish",
    "schema_text",
]


class QueueDescription(BaseModel):
    """A task's queue as declared in code."""

    model_config = ConfigDict(frozen=True)

    name: str
    concurrency_limit: int | None = None
    rate_limit: int | None = None
    rate_period_seconds: float | None = None


class RetryDescription(BaseModel):
    """A task's retry policy (``retry_on`` is code: only whether it filters is kept)."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int
    factor: float
    min_timeout: float
    max_timeout: float
    randomize: bool
    filters_errors: bool = False


class TaskDescription(BaseModel):
    """What the catalog stores for one task (``TASK#<id>``).

    Attributes:
        task_id: The task's id.
        payload_schema: JSON Schema of the payload annotation (``{}``: anything).
        output_schema: JSON Schema of the return annotation.
        queue: Its queue and limits.
        retry: Its retry policy.
        cron: Its cron expression, if scheduled.
        timezone: The cron expression's timezone.
        max_duration_seconds: Its bound on a run's wall time, if any.
        version: A hash of the code and of everything above: a change of
            either is a new version, written once.
    """

    model_config = ConfigDict(frozen=True)

    task_id: str
    payload_schema: dict[str, Any]
    output_schema: dict[str, Any]
    queue: QueueDescription
    retry: RetryDescription
    cron: str | None = None
    timezone: str = "UTC"
    max_duration_seconds: float | None = None
    version: str = ""


class CatalogStore(Protocol):
    """Where task descriptions are kept (the table's ``TASK#<id>`` items, or memory)."""

    def versions(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The stored version of each of ``task_ids`` that is catalogued (batched reads)."""
        ...

    def put(self, description: TaskDescription) -> bool:
        """Store ``description`` unless that version is already stored; whether it wrote."""
        ...

    def get(self, task_id: str) -> TaskDescription | None:
        """The task's description, or ``None``."""
        ...

    def list(self) -> list[TaskDescription]:
        """Every catalogued task, by id."""
        ...


def _schema(annotation: Any) -> dict[str, Any]:
    try:
        return dict(serde.adapter_for(annotation).json_schema())
    except Exception as exc:  # noqa: BLE001 - pydantic raises several kinds for odd types
        # A type pydantic cannot describe still validates in code; its catalog
        # entry accepts anything and the run validates the payload on start.
        return {"description": f"no JSON Schema for this annotation ({type(exc).__name__})"}


def _code_hash(task: Task[Any, Any]) -> str:
    """The source of the task's module (steps live there too), else of its function."""
    module = sys.modules.get(task.fn.__module__)
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(task.fn)
    except (OSError, TypeError):
        source = task.fn.__code__.co_code.hex()
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def describe(task: Task[Any, Any]) -> TaskDescription:
    """The catalog description of ``task``, its version hash included."""
    queue: Queue = task.queue
    rate: RateLimit | None = queue.rate_limit
    description = TaskDescription(
        task_id=task.id,
        payload_schema=_schema(task.payload_type),
        output_schema=_schema(task.output_type),
        queue=QueueDescription(
            name=queue.name,
            concurrency_limit=queue.concurrency_limit,
            rate_limit=rate.limit if rate else None,
            rate_period_seconds=rate.period if rate else None,
        ),
        retry=RetryDescription(
            max_attempts=task.retry.max_attempts,
            factor=task.retry.factor,
            min_timeout=task.retry.min_timeout,
            max_timeout=task.retry.max_timeout,
            randomize=task.retry.randomize,
            filters_errors=task.retry.retry_on is not None,
        ),
        cron=task.cron,
        timezone=task.timezone,
        max_duration_seconds=task.max_duration.total_seconds() if task.max_duration else None,
    )
    digest = hashlib.sha256()
    digest.update(_code_hash(task).encode("ascii"))
    digest.update(description.model_dump_json().encode("utf-8"))
    return description.model_copy(update={"version": digest.hexdigest()[:32]})


def publish(registry: TaskRegistry, store: CatalogStore) -> list[str]:
    """Write the description of each task in ``registry`` whose version is not stored yet.

    One batched read of the stored versions, then one conditional write per
    changed task: an unchanged cold start writes nothing.

    Returns:
        The ids of the tasks written.
    """
    descriptions = [describe(task) for task in registry.tasks()]
    stored = store.versions([d.task_id for d in descriptions])
    return [d.task_id for d in descriptions if stored.get(d.task_id) != d.version and store.put(d)]


class CatalogTask:
    """A task known only by its catalog entry: enough to validate a payload and create a run.

    Args:
        description: The task's stored description.
    """

    def __init__(self, description: TaskDescription) -> None:
        """Compile the payload schema once."""
        self.description = description
        self.id = description.task_id
        q = description.queue
        rate = (
            RateLimit(q.rate_limit, q.rate_period_seconds)
            if q.rate_limit is not None and q.rate_period_seconds is not None
            else None
        )
        self.queue = Queue(q.name, q.concurrency_limit, rate)
        # Imported here: only processes that trigger by catalog pay for jsonschema.
        import jsonschema  # noqa: PLC0415
        from jsonschema.exceptions import SchemaError  # noqa: PLC0415

        try:
            validator_class = jsonschema.validators.validator_for(description.payload_schema)
            validator_class.check_schema(description.payload_schema)
        except SchemaError as exc:
            raise ConfigurationError(
                f"task {self.id!r}: its catalogued payload schema is invalid: {exc.message}"
            ) from None
        self._validator = validator_class(description.payload_schema)

    def validate_payload(self, payload: Any) -> Any:
        """Check ``payload`` against the stored schema; return it unchanged.

        Raises:
            PayloadValidationError: Naming each field that does not fit.
        """
        problems: list[tuple[str, str]] = []
        for error in self._validator.iter_errors(payload):
            path = [str(p) for p in error.path]
            required = error.validator_value
            if error.validator == "required" and isinstance(error.instance, dict):
                # Name the missing field itself, as pydantic does, not the object holding it.
                names = required if isinstance(required, list) else []
                missing = [str(f) for f in names if f not in error.instance]
                problems += [(".".join([*path, f]), "Field required") for f in missing]
            else:
                problems.append((".".join(path), error.message))
        if problems:
            raise PayloadValidationError(self.id, "payload", sorted(problems))
        return payload

    def encode_payload(self, payload: Any) -> str:
        """Validate ``payload`` and encode it for storage (JSON text)."""
        self.validate_payload(payload)
        try:
            return serde.encode(payload)
        except (TypeError, ValueError) as exc:
            raise PayloadValidationError(self.id, "payload", [("", str(exc))]) from None


def schema_text(description: TaskDescription) -> str:
    """The description as stored: canonical JSON (sorted keys)."""
    return json.dumps(description.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
