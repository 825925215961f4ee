"""Each API request writes one JSON line naming what its path names, never its body or query."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Api, Context, event

from durable_lambda.observability import logger

# The module (the package exports its handler function under the same name).
api_handler = importlib.import_module("durable_lambda.api.handler")


ORDER = {"order_id": "o-1", "amount_cents": 4200, "email": "a@example.com"}


@pytest.fixture
def handled(api: Api) -> Iterator[Api]:
    api_handler._api = api.app  # the handler serves the moto-backed resolver
    yield api
    api_handler.reset()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """The library logger's lines as Powertools formats them (appended keys included)."""
    stream = io.StringIO()
    written = logging.StreamHandler(stream)
    written.setFormatter(logger.registered_formatter)
    logger.addHandler(written)
    yield stream
    logger.removeHandler(written)


def _lines(out: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in out.splitlines() if line.startswith("{") and '"level"' in line
    ]


def test_a_request_line_names_the_run_and_status_never_the_payload(handled: Api, log):
    canary = "canary-api-log-7f3a"
    created = api_handler.handler(
        event("api_trigger", body={"payload": {**ORDER, "email": canary}}), Context()
    )
    run_id = json.loads(created["body"])["run_id"]
    api_handler.handler(
        event("api_get_run", path=f"/runs/{run_id}", pathParameters={"run_id": run_id}), Context()
    )
    secret = "callback-secret-in-the-query"
    api_handler.handler(event("api_callback", queryStringParameters={"secret": secret}), Context())
    out = log.getvalue()

    lines = [line for line in _lines(out) if line["message"] == "api request"]
    assert [(line["method"], line["status"]) for line in lines] == [
        ("POST", 202),
        ("GET", 200),
        ("POST", 404),
    ]
    assert lines[0]["task_id"] == "process-order"
    assert lines[1]["run_id"] == run_id
    assert lines[2]["token_id"].startswith("tok_")
    assert all(line["request_id"] == "api-test" for line in lines)
    assert canary not in out
    assert secret not in out


def test_ids_are_read_from_the_path_only():
    assert api_handler.path_ids("/runs/run_1/cancel") == {"run_id": "run_1"}
    assert api_handler.path_ids("/tasks/t-1/runs") == {"task_id": "t-1"}
    assert api_handler.path_ids("/callbacks/tok_1") == {"token_id": "tok_1"}
    assert api_handler.path_ids("/queues") == {}
