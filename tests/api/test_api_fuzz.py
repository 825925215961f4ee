"""Fuzz the API from its own OpenAPI document (schemathesis), served on localhost.

A tiny WSGI adapter turns each HTTP request into the API Gateway proxy event
Lambda would receive and calls the handler on moto. Every operation of the
document (each catalogued task's trigger included) gets valid and invalid
requests; none may answer 5xx and nothing may log an error.
"""

from __future__ import annotations

import dataclasses
import http
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from api_support import Api, Context

from durable_lambda.adapters.memory import MemoryResumeQueue
from durable_lambda.api import ApiService, build_api
from durable_lambda.services import build_services
from durable_lambda.task import TaskRegistry

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

pytestmark = [pytest.mark.moto, pytest.mark.slow]

#: Generated requests per operation and generation mode (operations without
#: parameters get as many as their space allows: one).
EXAMPLES = 70
MINIMUM_REQUESTS = 1000


def lambda_wsgi(handler: Callable[[dict[str, Any], Any], dict[str, Any]], calls: list[int]) -> Any:
    """A WSGI app calling ``handler`` with the REST proxy event of each request."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        # PEP 3333 hands the path over as latin-1; API Gateway decodes it as UTF-8.
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        event = {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": environ["REQUEST_METHOD"],
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}",
                "httpMethod": environ["REQUEST_METHOD"],
                "path": "/v1" + path,
                "stage": "v1",
                "requestId": f"fuzz-{len(calls)}",
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": raw.decode("utf-8", "replace") if raw else None,
            "isBase64Encoded": False,
        }
        calls.append(1)
        response = handler(event, Context())
        status = int(response["statusCode"])
        reason = http.HTTPStatus(status).phrase
        headers_out = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers_out += [(name, str(v)) for v in values]
        start_response(f"{status} {reason}", headers_out)
        return [(response.get("body") or "").encode()]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        return


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def served(api: Api) -> Iterator[tuple[str, list[int], _Errors]]:
    calls: list[int] = []
    errors = _Errors()
    watched = [logging.getLogger(), logging.getLogger("durable-lambda")]
    for log in watched:
        log.addHandler(errors)

    # Runs on moto's DynamoDB and S3; resume messages in memory, since moto's SQS
    # slows down with the depth a thousand unconsumed triggers would give it.
    ports = dataclasses.replace(api.ports, queue=MemoryResumeQueue(api.ports.clock.now))
    client = build_services(ports, TaskRegistry(), api.settings).client
    app = build_api(ApiService(client, api.settings))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(app.resolve(event, context))

    server = make_server("127.0.0.1", 0, lambda_wsgi(handler, calls), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", calls, errors
    finally:
        server.shutdown()
        server.server_close()
        for log in watched:
            log.removeHandler(errors)


def test_generated_requests_never_get_a_5xx_or_log_an_error(api: Api, served):
    base_url, calls, errors = served
    # A few runs so that reads and cursors meet real data.
    for i in range(3):
        order = {"order_id": f"f-{i}", "amount_cents": 1, "email": "e"}
        api.call("api_trigger", body={"payload": order})
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    modes = list(schemathesis.GenerationMode)
    server_errors: list[str] = []
    per_operation: dict[str, int] = {"setup": len(calls)}
    for result, mode in itertools.product(schema.get_all_operations(), modes):
        operation = result.ok()

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base_url)
            if response.status_code >= 500:
                server_errors.append(f"{case.operation.label}: {response.text[:200]}")

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable:
            # No invalid request exists for an operation without parameters.
            assert mode is schemathesis.GenerationMode.NEGATIVE
        per_operation[f"{operation.label} {mode.value}"] = len(calls) - sum(per_operation.values())
    print(per_operation)  # noqa: T201 - shows the spread when the count assertion fails
    assert server_errors == []
    assert [r.getMessage() for r in errors.records] == []
    assert len(calls) >= MINIMUM_REQUESTS
