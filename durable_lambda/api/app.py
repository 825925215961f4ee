"""The HTTP API on API Gateway (REST): Powertools' event handler with pydantic validation.

Routes (every error is ``{"error": {"type", "message", "details"}}``):

- ``POST /tasks/{task_id}/runs``: trigger (202; 200 for an existing run of the same key)
- ``POST /tasks/{task_id}/batch``: up to 1,000 triggers, one result each
- ``GET /tasks``: the task catalog
- ``GET /runs``: runs newest first, filtered, with an opaque signed cursor
- ``GET /runs/{run_id}``: a run with its timeline (``?include=values`` for large values)
- ``POST /runs/{run_id}/replay``: a new run of its task, from the start or ``from_step`` (202)
- ``POST /runs/{run_id}/cancel``: cancel a run (409 once it has finished)
- ``GET /queues``, ``POST /queues/{name}/pause|resume|limit``: queue control
- ``POST /tokens/{token_id}/complete|fail|heartbeat``, ``GET /tokens/{token_id}``,
  ``POST /callbacks/{token_id}``: wait tokens (:mod:`durable_lambda.api.tokens`)
- ``GET /openapi.json``: this API's OpenAPI document, with each task's payload schema
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from durable_lambda.api.models import (
    BatchRequest,
    BatchResponse,
    ErrorBody,
    ErrorDetail,
    QueueControl,
    QueueLimit,
    QueueList,
    QueueView,
    ReplayRequest,
    ReplayResponse,
    TaskList,
    TriggerRequest,
    TriggerResponse,
)
from durable_lambda.api.service import ApiError, ApiService
from durable_lambda.api.tokens import token_routes
from durable_lambda.engine.state import RunStatus
from durable_lambda.observability import logger
from durable_lambda.runs import MAX_PAGE
from durable_lambda.views import RunDetail, RunPage

TITLE = "durable-lambda"
API_VERSION = "1"

_ERRORS: dict[int, str] = {
    400: "Malformed JSON or a bad cursor",
    404: "Unknown task, run, queue or token",
    409: (
        "The idempotency key started a run with another payload, the token is resolved, "
        "or the run has finished"
    ),
    413: "Payload above the limit (names size and limit)",
    422: "Validation failed (names the field), or an unknown replay step (names it)",
}


def _responses(ok: int, model: type[Any], *extra: int) -> dict[int, OpenAPIResponse]:
    responses: dict[int, OpenAPIResponse] = {
        ok: {"description": "OK", "content": {"application/json": {"model": model}}}
    }
    for status in (400, 422, *extra):
        responses[status] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return responses


def _json(status: int, body: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json() if hasattr(body, "model_dump_json") else body,
    )


def error_response(error: ApiError) -> Response[str]:
    """The response of a refused request."""
    return _json(error.status, ErrorBody(error=error.detail()))


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiError(400, "malformed_json", "the request body is not valid JSON")
    fields = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        where = loc[0] if loc else "body"
        # "body.items.0.tags" names the field a client must fix.
        fields.append({"field": ".".join(loc) or where, "message": str(e.get("msg", ""))})
    named = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "validation_error", f"invalid request: {named}", fields)


def build_api(service: ApiService) -> APIGatewayRestResolver:
    """The resolver with every route bound to ``service``."""
    app = APIGatewayRestResolver(enable_validation=True)
    _error_handlers(app)
    _task_routes(app, service)
    _run_routes(app, service)
    _replay_route(app, service)
    for action in ("pause", "resume"):
        _control_route(app, service, action)
    _limit_route(app, service)
    token_routes(app, service, _json, _responses)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        document = openapi_document(app, service)
        return Response(200, content_types.APPLICATION_JSON, _dumps(document))

    return app


def _error_handlers(app: APIGatewayRestResolver) -> None:
    def api_failed(exc: ApiError) -> Response[str]:
        return error_response(exc)

    def invalid(exc: RequestValidationError) -> Response[str]:
        return error_response(_validation_error(exc))

    def not_json(_: RequestUnsupportedContentType) -> Response[str]:
        # Raised by the validation middleware before any route runs: a client
        # (a webhook sending text/plain) error, never a 500.
        kind = (app.current_event.headers.get("content-type") or "")[:100]
        message = f"request bodies are JSON (Content-Type: application/json), not {kind!r}"
        return error_response(ApiError(415, "unsupported_media_type", message))

    def unexpected(exc: Exception) -> Response[str]:
        # Never the payload: the exception's type only.
        logger.exception("api request failed", extra={"error": type(exc).__name__})
        error = ErrorDetail(type="internal_error", message="internal error", details=None)
        return _json(500, ErrorBody(error=error))

    def no_route(_: Exception) -> Response[str]:
        path = app.current_event.path
        return error_response(ApiError(404, "route_not_found", f"no route {path!r}"))

    app.exception_handler(ApiError)(api_failed)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(RequestUnsupportedContentType)(not_json)
    app.exception_handler(Exception)(unexpected)
    app.not_found(no_route)


def _task_routes(app: APIGatewayRestResolver, service: ApiService) -> None:
    @app.post(
        "/tasks/<task_id>/runs",
        summary="Trigger a run",
        responses=_responses(202, TriggerResponse, 404, 409, 413),
    )
    def trigger(
        task_id: Annotated[str, Path(max_length=128)], body: Annotated[TriggerRequest, Body()]
    ) -> Response[str]:
        status, response = service.trigger(task_id, body)
        return _json(status, response)

    @app.post(
        "/tasks/<task_id>/batch",
        summary="Trigger up to 1,000 runs",
        responses=_responses(200, BatchResponse, 404, 413),
    )
    def batch(
        task_id: Annotated[str, Path(max_length=128)], body: Annotated[BatchRequest, Body()]
    ) -> Response[str]:
        return _json(200, service.batch(task_id, body))

    @app.get("/tasks", summary="The task catalog", responses=_responses(200, TaskList))
    def tasks() -> Response[str]:
        return _json(200, service.tasks())

    @app.get("/queues", summary="Queues and their counters", responses=_responses(200, QueueList))
    def queues() -> Response[str]:
        return _json(200, service.queues())


def _run_routes(app: APIGatewayRestResolver, service: ApiService) -> None:
    @app.get("/runs", summary="List runs, newest first", responses=_responses(200, RunPage))
    def list_runs(
        *,
        task: Annotated[str | None, Query(max_length=128)] = None,
        status: Annotated[RunStatus | None, Query()] = None,
        tag: Annotated[str | None, Query(max_length=128)] = None,
        created_from: Annotated[dt.datetime | None, Query()] = None,
        created_to: Annotated[dt.datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> Response[str]:
        page = service.list_runs(
            task=task,
            status=status,
            tag=tag,
            created_from=_aware(created_from),
            created_to=_aware(created_to),
            limit=limit,
            cursor=cursor,
        )
        return _json(200, page)

    @app.get(
        "/runs/<run_id>",
        summary="A run and its timeline",
        responses=_responses(200, RunDetail, 404),
    )
    def get_run(
        run_id: Annotated[str, Path(max_length=128)],
        include: Annotated[Literal["values"] | None, Query()] = None,
    ) -> Response[str]:
        return _json(200, service.get_run(run_id, include_values=include == "values"))

    @app.post(
        "/runs/<run_id>/cancel",
        summary="Cancel a run: at once while it waits, at its next step boundary while it runs",
        responses=_responses(200, RunDetail, 404, 409),
        operation_id="cancel_run",
    )
    def cancel_run(run_id: Annotated[str, Path(max_length=128)]) -> Response[str]:
        return _json(200, service.cancel_run(run_id))


def _replay_route(app: APIGatewayRestResolver, service: ApiService) -> None:
    @app.post(
        "/runs/<run_id>/replay",
        summary="Replay a run: from the start, or from a named step (the journal before it copied)",
        responses=_responses(202, ReplayResponse, 404, 413),
    )
    def replay(
        run_id: Annotated[str, Path(max_length=128)],
        body: Annotated[ReplayRequest | None, Body()] = None,
    ) -> Response[str]:
        # No body at all is a replay from the start with the same payload.
        return _json(202, service.replay(run_id, body or ReplayRequest()))


def _control_route(app: APIGatewayRestResolver, service: ApiService, action: str) -> None:
    @app.post(
        f"/queues/<name>/{action}",
        summary=f"{action.capitalize()} a queue (or one concurrency key of it)",
        responses=_responses(200, QueueView, 404),
        operation_id=f"{action}_queue",
    )
    def control(
        name: Annotated[str, Path(max_length=80)], body: Annotated[QueueControl, Body()]
    ) -> Response[str]:
        return _json(200, service.control(name, action, body))


def _limit_route(app: APIGatewayRestResolver, service: ApiService) -> None:
    @app.post(
        "/queues/<name>/limit",
        summary="Override a queue's concurrency limit (null: back to the code's)",
        responses=_responses(200, QueueView, 404),
        operation_id="limit_queue",
    )
    def limit(
        name: Annotated[str, Path(max_length=80)], body: Annotated[QueueLimit, Body()]
    ) -> Response[str]:
        return _json(200, service.control(name, "limit", body))


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """Query times without a zone are UTC (stored times are all UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _dumps(document: dict[str, Any]) -> str:
    import json  # noqa: PLC0415 - only the OpenAPI route needs it

    return json.dumps(document, separators=(",", ":"))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _hoisted(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved to ``components`` under ``prefix`` (refs rewritten)."""
    import json  # noqa: PLC0415

    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    text = json.dumps(schema)
    for name, definition in defs.items():
        components[f"{prefix}{name}"] = definition
    text = text.replace('"#/$defs/', f'"#/components/schemas/{prefix}')
    for name in defs:
        body = json.dumps(components[f"{prefix}{name}"])
        body = body.replace('"#/$defs/', f'"#/components/schemas/{prefix}')
        components[f"{prefix}{name}"] = json.loads(body)
    hoisted: dict[str, Any] = json.loads(text)
    return hoisted


def openapi_document(app: APIGatewayRestResolver, service: ApiService) -> dict[str, Any]:
    """The OpenAPI document: the routes, and per catalogued task its trigger and payload schema."""
    document: dict[str, Any] = app.get_openapi_schema(title=TITLE, version=API_VERSION).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    generic = document["paths"].get("/tasks/{task_id}/runs", {}).get("post")
    for description in service.task_descriptions():
        safe = _UNSAFE.sub("_", description.task_id)
        prefix = f"task.{safe}."
        components[f"{prefix}Payload"] = _hoisted(description.payload_schema, prefix, components)
        if generic is None:
            continue
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"trigger_{safe}"
        operation["summary"] = f"Trigger {description.task_id}"
        operation["parameters"] = []
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/TriggerRequest"},
                            {
                                "type": "object",
                                "properties": {
                                    "payload": {"$ref": f"#/components/schemas/{prefix}Payload"}
                                },
                            },
                        ]
                    }
                }
            },
        }
        document["paths"][f"/tasks/{description.task_id}/runs"] = {"post": operation}
    return document
