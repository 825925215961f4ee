"""What the HTTP API does, apart from HTTP: trigger, list, read, queue control.

Every refusal is an :class:`ApiError` carrying its status, type, message and
details, raised before anything is written: no error leaves a half-created run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

from durable_lambda.api.cursor import BadCursorError, decode_cursor, encode_cursor
from durable_lambda.api.models import (
    BatchItemResult,
    BatchRequest,
    BatchResponse,
    ErrorDetail,
    QueueControl,
    QueueLimit,
    QueueList,
    QueueView,
    ReplayRequest,
    ReplayResponse,
    TaskList,
    TriggerOptions,
    TriggerRequest,
    TriggerResponse,
)
from durable_lambda.catalog import TaskDescription, describe
from durable_lambda.client import BatchOutcome, Client, Definition
from durable_lambda.engine.records import RunRecord
from durable_lambda.engine.slots import QueueState
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    ConfigurationError,
    DurableLambdaError,
    PayloadTooLarge,
    PayloadValidationError,
    RunFinishedError,
    RunNotFoundError,
    UnknownStepError,
    UnknownTaskError,
)
from durable_lambda.runs import Runs
from durable_lambda.settings import Settings
from durable_lambda.views import RunDetail, RunPage


class ApiError(DurableLambdaError):
    """A refused request: its HTTP status and the error body's fields.

    Attributes:
        status: The HTTP status.
        type: A stable machine-readable kind (``unknown_task``, ``validation_error``...).
        message: What is wrong, naming the field, size or limit.
        details: Structured detail (the fields, the registered task ids...).
    """

    def __init__(self, status: int, type_: str, message: str, details: Any = None) -> None:
        self.status = status
        self.type = type_
        self.message = message
        self.details = details
        super().__init__(message)

    def detail(self) -> ErrorDetail:
        """The ``error`` object of the response body."""
        return ErrorDetail(type=self.type, message=self.message, details=self.details)


def api_error(exc: DurableLambdaError) -> ApiError:
    """The HTTP form of a runtime error raised before anything was written."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PayloadValidationError):
        fields = [{"field": loc or "<root>", "message": msg} for loc, msg in exc.errors]
        return ApiError(422, "validation_error", str(exc), fields)
    if isinstance(exc, PayloadTooLarge):
        details = {"what": exc.what, "size": exc.size, "limit": exc.limit}
        return ApiError(413, "payload_too_large", str(exc), details)
    if isinstance(exc, ConfigurationError):
        return ApiError(422, "validation_error", str(exc))
    if isinstance(exc, RunNotFoundError):
        return ApiError(404, "run_not_found", str(exc))
    if isinstance(exc, BadCursorError):
        return ApiError(400, "bad_cursor", str(exc))
    raise exc


def _same_payload(stored: str, encoded: str) -> bool:
    return bool(json.loads(stored) == json.loads(encoded))


class ApiService:
    """The API's operations on one client (store, queue, catalog, slots).

    Args:
        client: Triggers runs and controls queues; its store is read directly.
        settings: Value limits and the cursor key.
    """

    def __init__(self, client: Client, settings: Settings) -> None:
        """Wire to ``client``; an empty cursor key gets a random one for this process."""
        self.client = client
        self.settings = settings
        self.runs = Runs(client.store, tokens=client.tokens, cancels=client.cancels)
        key = settings.api_cursor_key
        self.cursor_key = key.encode() if key else os.urandom(32)

    # -- tasks -------------------------------------------------------------------------

    def task_descriptions(self) -> list[TaskDescription]:
        """The catalog, with tasks registered here that are not catalogued yet."""
        found: dict[str, TaskDescription] = {}
        if self.client.catalog is not None:
            found = {d.task_id: d for d in self.client.catalog.list()}
        for task in self.client.registry.tasks():
            found.setdefault(task.id, describe(task))
        return [found[task_id] for task_id in sorted(found)]

    def tasks(self) -> TaskList:
        """``GET /tasks``."""
        return TaskList(tasks=self.task_descriptions())

    def _definition(self, task_id: str) -> Definition:
        try:
            return self.client.definition(task_id)
        except UnknownTaskError:
            known = self.client.known_task_ids()
            raise ApiError(
                404,
                "unknown_task",
                f"no task {task_id!r}; registered tasks: {', '.join(known) or 'none'}",
                {"registered": known},
            ) from None

    def _encoded(self, definition: Definition, payload: Any) -> str:
        """The payload validated and encoded, refused above the value limit (413)."""
        encoded = definition.encode_payload(payload)
        size = len(encoded.encode())
        if size > self.settings.max_value_bytes:
            raise PayloadTooLarge("payload", size, self.settings.max_value_bytes)
        return encoded

    # -- triggers ----------------------------------------------------------------------

    def trigger(self, task_id: str, request: TriggerRequest) -> tuple[int, TriggerResponse]:
        """``POST /tasks/{task_id}/runs``: 202 created, 200 an existing run of the same key.

        Raises:
            ApiError: 404 unknown task, 409 same key with another payload,
                413 payload above the limit, 422 invalid payload or option.
        """
        definition = self._definition(task_id)
        try:
            encoded = self._encoded(definition, request.payload)
            handle = self.client.trigger(
                task_id, request.payload, **_options(request, TriggerOptions)
            )
        except (PayloadValidationError, PayloadTooLarge, ConfigurationError) as exc:
            raise api_error(exc) from None
        if not handle.cached:
            return 202, TriggerResponse(run_id=handle.run_id, task_id=task_id)
        existing = self.client.store.get_run(handle.run_id)
        if existing is not None and not _same_payload(existing.payload, encoded):
            raise _key_conflict(request.idempotency_key, handle.run_id)
        return 200, TriggerResponse(run_id=handle.run_id, task_id=task_id, existing=True)

    def batch(self, task_id: str, request: BatchRequest) -> BatchResponse:
        """``POST /tasks/{task_id}/batch``: one result per item; refused items create nothing."""
        definition = self._definition(task_id)
        results: list[BatchItemResult | None] = [None] * len(request.items)
        accepted: list[tuple[int, dict[str, Any], str]] = []
        for i, item in enumerate(request.items):
            try:
                encoded = self._encoded(definition, item.payload)
            except (PayloadValidationError, PayloadTooLarge) as exc:
                results[i] = _item_error(i, api_error(exc))
                continue
            options = _options(item, TriggerOptions)
            accepted.append((i, {"payload": item.payload, **options}, encoded))
        outcomes = self.client.trigger_batch(definition.id, [a[1] for a in accepted])
        created = 0
        for (i, _, encoded), outcome in zip(accepted, outcomes, strict=True):
            results[i], fresh = _item_result(i, outcome, encoded)
            created += fresh
        return BatchResponse(
            task_id=task_id, created=created, results=[r for r in results if r is not None]
        )

    # -- runs --------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        task: str | None,
        status: RunStatus | None,
        tag: str | None,
        created_from: dt.datetime | None,
        created_to: dt.datetime | None,
        limit: int,
        cursor: str | None,
    ) -> RunPage:
        """``GET /runs``: newest first; the cursor is checked against this very query."""
        query: Mapping[str, str | None] = {
            "task": task,
            "status": status.value if status is not None else None,
            "tag": tag,
            "created_from": created_from.isoformat() if created_from else None,
            "created_to": created_to.isoformat() if created_to else None,
            "limit": str(limit),
        }
        try:
            before = decode_cursor(self.cursor_key, query, cursor) if cursor else None
        except BadCursorError as exc:
            raise api_error(exc) from None
        runs = self.runs.list(
            task=task,
            status=status,
            tag=tag,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            before=before,
        )
        next_cursor = None
        if len(runs) == limit:
            last = runs[-1]
            next_cursor = encode_cursor(self.cursor_key, query, (last.created_at, last.run_id))
        return RunPage(runs=runs, next_cursor=next_cursor)

    def get_run(self, run_id: str, *, include_values: bool) -> RunDetail:
        """``GET /runs/{run_id}``."""
        try:
            return self.runs.retrieve(run_id, include_values=include_values)
        except RunNotFoundError as exc:
            raise api_error(exc) from None

    def replay(self, run_id: str, request: ReplayRequest) -> ReplayResponse:
        """``POST /runs/{run_id}/replay``: 202 with the new run.

        Every check runs before the first write (the copied journal), so a
        refusal leaves the table as it was.

        Raises:
            ApiError: 404 unknown run (or its task), 413 payload above the limit,
                422 unknown step (naming it and the steps that exist) or invalid payload.
        """
        try:
            original = self.client.get_run(run_id)
        except RunNotFoundError as exc:
            raise api_error(exc) from None
        definition = self._definition(original.task_id)
        try:
            if request.payload is not None:
                self._encoded(definition, request.payload)
            handle = self.client.replay(run_id, request.payload, request.from_step)
        except UnknownStepError as exc:
            details = {"step": exc.step, "steps": exc.known}
            raise ApiError(422, "unknown_step", str(exc), details) from None
        except (PayloadValidationError, PayloadTooLarge, RunNotFoundError) as exc:
            raise api_error(exc) from None
        return ReplayResponse(run_id=handle.run_id, task_id=handle.task_id, replay_of=run_id)

    def cancel_run(self, run_id: str) -> RunDetail:
        """``POST /runs/{run_id}/cancel``: the run as the cancel leaves it.

        Raises:
            ApiError: 404 unknown run, 409 a finished run (nothing changed).
        """
        try:
            return self.runs.cancel(run_id)
        except RunNotFoundError as exc:
            raise api_error(exc) from None
        except RunFinishedError as exc:
            raise ApiError(409, "run_finished", str(exc), {"status": exc.status}) from None

    # -- queues ------------------------------------------------------------------------

    def _queue_limits(self) -> dict[str, int | None]:
        return {d.queue.name: d.queue.concurrency_limit for d in self.task_descriptions()}

    def queues(self) -> QueueList:
        """``GET /queues``: every queue a task declares, with its counter."""
        limits = self._queue_limits()
        views = []
        for name in sorted(limits):
            state = self.client.queue_state(name)
            views.append(_queue_view(state, limits[name]))
        return QueueList(queues=views)

    def control(self, name: str, action: str, body: QueueControl) -> QueueView:
        """``POST /queues/{name}/pause|resume|limit``."""
        limits = self._queue_limits()
        if name not in limits:
            raise ApiError(
                404,
                "queue_not_found",
                f"no queue {name!r}; known queues: {', '.join(sorted(limits)) or 'none'}",
                {"queues": sorted(limits)},
            )
        key = body.concurrency_key
        if action == "pause":
            state = self.client.pause_queue(name, key)
        elif action == "resume":
            state = self.client.resume_queue(name, key)
        else:
            limit = body.limit if isinstance(body, QueueLimit) else None
            state = self.client.set_queue_limit(name, limit, key)
        return _queue_view(state, limits[name])


def _options(request: TriggerOptions, model: type[TriggerOptions]) -> dict[str, Any]:
    """The trigger options a request sets (unset ones keep the client's defaults)."""
    return {k: getattr(request, k) for k in model.model_fields if k in request.model_fields_set}


def _key_conflict(key: str | None, run_id: str) -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        f"idempotency key {key!r} already started run {run_id} with a different payload",
        {"run_id": run_id, "idempotency_key": key},
    )


def _item_error(index: int, error: ApiError) -> BatchItemResult:
    return BatchItemResult(index=index, status=error.status, error=error.detail())


def _item_result(index: int, outcome: BatchOutcome, encoded: str) -> tuple[BatchItemResult, int]:
    """The item's result and whether it created a run."""
    if outcome.error is not None:
        return _item_error(index, api_error(outcome.error)), 0
    handle, run = outcome.handle, outcome.run
    assert handle is not None  # noqa: S101 - a BatchOutcome has a handle or an error
    if not handle.cached:
        return BatchItemResult(index=index, status=202, run_id=handle.run_id), 1
    if isinstance(run, RunRecord) and not _same_payload(run.payload, encoded):
        conflict = _key_conflict(run.idempotency_key, handle.run_id)
        return _item_error(index, conflict), 0
    return BatchItemResult(index=index, status=200, run_id=handle.run_id, existing=True), 0


def _queue_view(state: QueueState, code_limit: int | None) -> QueueView:
    return QueueView(
        name=state.key.queue,
        concurrency_key=state.key.concurrency_key,
        code_limit=code_limit,
        limit_override=state.limit_override,
        limit=state.limit_override if state.limit_override is not None else code_limit,
        paused=state.paused,
        running=state.count,
        waiting=state.waiting,
    )
