"""Fuzz the API from its own OpenAPI document (schemathesis), served on localhost.

``durable_lambda.local.http_api`` (the dev server's) turns each HTTP request
into the API Gateway proxy event Lambda would receive and calls the handler on
moto. Every operation of the document (each catalogued task's trigger, the
token routes and the unauthenticated callback route included) gets valid and
invalid requests; none may answer 5xx and nothing may log an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Api, Context

from durable_lambda.adapters.memory import MemoryResumeQueue
from durable_lambda.api import ApiService, build_api
from durable_lambda.engine.token_secrets import secret_hash
from durable_lambda.engine.tokens import Resolution, TokenInfo, TokenStatus
from durable_lambda.local.http_api import ApiServer
from durable_lambda.services import build_services
from durable_lambda.task import TaskRegistry

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

pytestmark = [pytest.mark.moto, pytest.mark.slow]

#: Generated requests per operation and generation mode (operations without
#: parameters get as many as their space allows: one).
EXAMPLES = 70
MINIMUM_REQUESTS = 1000


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

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return dict(app.resolve(event, Context()))

    try:
        with ApiServer(handler) as server:
            yield server.url, calls, errors
    finally:
        for log in watched:
            log.removeHandler(errors)


# A bound on liveness, not a speed claim: the work is a fixed number of examples
# (about 95 s on an idle 2-core machine); with another process keeping both cores
# busy it took 300 s and met the suite's default timeout.
@pytest.mark.timeout(1200)
def test_generated_requests_never_get_a_5xx_or_log_an_error(api: Api, served):
    base_url, calls, errors = served
    # A few runs so that reads and cursors meet real data.
    for i in range(3):
        order = {"order_id": f"f-{i}", "amount_cents": 1, "email": "e"}
        _, run = api.call("api_trigger", body={"payload": order})
        # Tokens named as generated path strings often are, pending or resolved,
        # so the token and callback routes meet real tokens, not only 404s.
        for token_id in (f"tok_{i}", "a" * (i + 1), "0" * (i + 1)):
            api.ports.tokens.create(_token(token_id, run["run_id"]))
    api.ports.tokens.resolve("tok_0", Resolution(TokenStatus.COMPLETED, data="1"), _NOW)
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
    for route in TOKEN_ROUTES:
        assert any(route in label and n > 0 for label, n in per_operation.items()), route


TOKEN_ROUTES = (
    "POST /tokens/{token_id}/complete",
    "POST /tokens/{token_id}/fail",
    "POST /tokens/{token_id}/heartbeat",
    "GET /tokens/{token_id}",
    "POST /callbacks/{token_id}",
)
_NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def _token(token_id: str, run_id: str) -> TokenInfo:
    return TokenInfo(
        token_id=token_id,
        run_id=run_id,
        status=TokenStatus.PENDING,
        created_at=_NOW,
        heartbeat_timeout=60.0,
        secret_hashes=(secret_hash("a"), secret_hash("0")),
    )
