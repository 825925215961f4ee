"""The HTTP API on moto: API Gateway proxy events (``events/api_*.json``) through the resolver.

Helpers of the api tier (``conftest.py`` holds its fixture).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from durable_lambda import Queue, task
from durable_lambda.api import ApiService, build_api
from durable_lambda.catalog import publish
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import TaskRegistry
from durable_lambda.testing.aws_counter import RequestCounter

EVENTS = Path(__file__).resolve().parents[2] / "events"

SETTINGS = Settings(
    table_name="dl-api",
    bucket_name="dl-api-values",
    inline_limit=64 * 1024,
    max_value_bytes=100 * 1024,
    api_cursor_key="test-cursor-key",
)


class OrderIn(BaseModel):
    order_id: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)
    email: str


def deployed_tasks() -> TaskRegistry:
    """The tasks as the worker's deploy published them (the API imports none of them)."""
    registry = TaskRegistry()

    @task(id="process-order", registry=registry, queue=Queue("orders", concurrency_limit=10))
    async def process_order(payload: OrderIn) -> dict[str, str]:
        return {"order_id": payload.order_id}

    @task(id="ping", registry=registry)
    async def ping(payload: int) -> int:
        return payload

    return registry


class Context:
    aws_request_id = "api-test"
    function_name = "api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def event(name: str, **changes: Any) -> dict[str, Any]:
    """The stored event ``events/<name>.json`` with ``changes``; ``body`` is JSON-encoded
    unless it is already a string, ``query`` sets both query parameter maps."""
    loaded = json.loads((EVENTS / f"{name}.json").read_text())
    result = copy.deepcopy(loaded)
    if "body" in changes:
        body = changes.pop("body")
        result["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    if "query" in changes:
        query = changes.pop("query")
        result["queryStringParameters"] = query or None
        result["multiValueQueryStringParameters"] = (
            {k: [v] for k, v in query.items()} if query else None
        )
    result.update(changes)
    return result


@dataclass
class Api:
    """The API under test, with probes into what it stored."""

    app: Any
    ports: Any
    settings: Settings
    session: Any
    counter: RequestCounter

    def call(self, name: str, **changes: Any) -> tuple[int, Any]:
        response = self.app.resolve(event(name, **changes), Context())
        return response["statusCode"], json.loads(response["body"])

    def table(self) -> list[dict[str, Any]]:
        """Every item of the table, sorted: what an error must leave unchanged."""
        client = self.ports.store.client
        items, start = [], None
        while True:
            page = client.scan(
                TableName=self.settings.table_name,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    def queued_messages(self) -> int:
        attributes = self.ports.queue.client.get_queue_attributes(
            QueueUrl=self.settings.resume_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())


def moto_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API on moto, its tasks published to the catalog (imported by none of its code)."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with moto.mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        settings = ensure_resources(SETTINGS, session)
        ports = aws_ports(settings, session)
        assert ports.catalog is not None
        publish(deployed_tasks(), ports.catalog)
        client = build_services(ports, TaskRegistry(), settings).client
        counter = RequestCounter().attach(ports.store.client, ports.queue.client)
        yield Api(build_api(ApiService(client, settings)), ports, settings, session, counter)
