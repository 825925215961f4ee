"""Wait tokens over HTTP (events/api_token_*.json, events/api_callback.json) on moto.

Each error case asserts the table and the resume queue are exactly as before it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from api_support import Api

from durable_lambda.engine.token_secrets import secret_hash
from durable_lambda.engine.tokens import TokenInfo, TokenStatus

pytestmark = pytest.mark.moto

TOKEN = "tok_0123456789abcdef0123456789abcdef"
SECRET = "s" * 43
ORDER = {"order_id": "o-1", "amount_cents": 4200, "email": "a@example.com"}


def pending_token(api: Api, token_id: str = TOKEN, **fields: Any) -> str:
    """A run waiting on ``token_id`` (its callback secret: ``SECRET``); the run's id."""
    _, run = api.call("api_trigger", body={"payload": ORDER})
    now = dt.datetime.now(dt.UTC)
    token = TokenInfo(
        token_id=token_id,
        run_id=run["run_id"],
        status=TokenStatus.PENDING,
        created_at=now,
        name="approval",
        timeout_at=now + dt.timedelta(days=2),
        secret_hashes=(secret_hash(SECRET),),
        **fields,
    )
    api.ports.tokens.create(token)
    return str(run["run_id"])


def refused(api: Api, name: str, status: int, kind: str, **changes: Any) -> dict[str, Any]:
    """Call ``name``; it must answer ``status``/``kind`` and leave table and queue unchanged."""
    table, messages = api.table(), api.queued_messages()
    got, body = api.call(name, **changes)
    assert (got, body["error"]["type"]) == (status, kind), body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert api.table() == table
    assert api.queued_messages() == messages
    return dict(body)


def callback(secret: str | None, body: Any = None, **query: str) -> dict[str, Any]:
    params = {**({"secret": secret} if secret is not None else {}), **query}
    return {"query": params, "body": None if body is None else json.dumps(body)}


def test_complete_resolves_the_token_and_wakes_its_run(api: Api):
    run_id = pending_token(api)
    before = api.queued_messages()
    status, body = api.call("api_token_complete")
    assert status == 200
    assert (body["token_id"], body["run_id"], body["status"]) == (TOKEN, run_id, "COMPLETED")
    assert body["data"]["inline"] is False
    assert "value" not in body["data"] or body["data"]["value"] is None
    stored = api.ports.tokens.get(TOKEN)
    assert stored.status is TokenStatus.COMPLETED
    assert json.loads(stored.data) == {"approved": True, "by": "reviewer@example.com"}
    assert api.queued_messages() == before + 1  # the run's nudge


def test_get_shows_status_run_and_deadlines_and_the_data_only_when_asked(api: Api):
    run_id = pending_token(api)
    status, body = api.call("api_token_get")
    assert status == 200
    assert (body["status"], body["run_id"], body["name"]) == ("PENDING", run_id, "approval")
    assert body["created_at"]
    assert body["timeout_at"]
    assert body["data"] is None
    assert "secret" not in json.dumps(body)
    api.call("api_token_complete")
    _, plain = api.call("api_token_get")
    assert plain["status"] == "COMPLETED"
    assert plain["resolved_at"]
    assert plain["data"]["inline"] is False
    assert plain["data"].get("value") is None
    _, full = api.call("api_token_get", query={"include": "values"})
    assert full["data"]["value"] == {"approved": True, "by": "reviewer@example.com"}


def test_fail_records_the_error_and_a_second_resolution_is_409(api: Api):
    pending_token(api)
    status, body = api.call("api_token_fail")
    assert (status, body["status"]) == (200, "FAILED")
    assert body["error"]["type"] == "Rejected"
    error = refused(api, "api_token_complete", 409, "token_already_resolved")
    assert error["error"]["details"] == {"status": "FAILED"}
    assert "FAILED" in error["error"]["message"]
    refused(api, "api_token_fail", 409, "token_already_resolved")
    refused(api, "api_token_heartbeat", 409, "token_already_resolved")


def test_heartbeat_moves_the_heartbeat_deadline(api: Api):
    pending_token(api, heartbeat_timeout=60.0)
    created = api.ports.tokens.get(TOKEN)
    status, body = api.call("api_token_heartbeat")
    assert (status, body["status"]) == (200, "PENDING")
    beat = api.ports.tokens.get(TOKEN)
    assert beat.last_heartbeat_at is not None
    assert beat.heartbeat_at >= created.heartbeat_at
    assert body["heartbeat_at"] is not None


@pytest.mark.parametrize(
    "name", ["api_token_complete", "api_token_fail", "api_token_heartbeat", "api_token_get"]
)
def test_an_unknown_token_is_404_on_every_route(api: Api, name: str):
    pending_token(api, token_id="tok_other")
    body = refused(api, name, 404, "token_not_found")
    assert TOKEN in body["error"]["message"]


def test_data_above_the_limit_is_413_naming_size_and_limit(api: Api):
    pending_token(api)
    data = "x" * (api.settings.max_value_bytes + 1)
    body = refused(api, "api_token_complete", 413, "payload_too_large", body={"data": data})
    details = body["error"]["details"]
    assert details["limit"] == api.settings.max_value_bytes
    assert details["size"] > details["limit"]
    assert str(details["limit"]) in body["error"]["message"]
    assert api.ports.tokens.get(TOKEN).status is TokenStatus.PENDING


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("api_token_complete", {"data": 1, "extra": True}),
        ("api_token_fail", {"error": {"type": "", "message": "m"}}),
        ("api_token_fail", {"error": {"message": "no type"}}),
    ],
)
def test_a_malformed_body_is_422_naming_the_field(api: Api, name: str, body: Any):
    pending_token(api)
    error = refused(api, name, 422, "validation_error", body=body)
    assert "body" in error["error"]["message"]


def test_malformed_json_is_400(api: Api):
    pending_token(api)
    refused(api, "api_token_complete", 400, "malformed_json", body="{not json")


# -- POST /callbacks/{token_id} ---------------------------------------------------------------


def test_a_callback_with_the_secret_completes_the_token_with_its_body(api: Api):
    pending_token(api)
    status, body = api.call("api_callback", **callback(SECRET, {"approved": True}))
    assert (status, body) == (200, {"token_id": TOKEN, "status": "COMPLETED"})
    stored = api.ports.tokens.get(TOKEN)
    assert json.loads(stored.data) == {"approved": True}
    refused(api, "api_callback", 409, "token_already_resolved", **callback(SECRET, {"again": 1}))


def test_a_wrong_or_missing_secret_answers_as_an_unknown_token_and_changes_nothing(api: Api):
    pending_token(api)
    other = TOKEN.replace("0123", "9999")
    unknown = refused(
        api,
        "api_callback",
        404,
        "token_not_found",
        path=f"/callbacks/{other}",
        pathParameters={"token_id": other},
        **callback(SECRET),
    )
    for secret in ("wrong", SECRET[:-1], "", None):
        body = refused(api, "api_callback", 404, "token_not_found", **callback(secret, {"a": 1}))
        # The same body as an unknown token, the id aside: nothing tells them apart.
        assert json.dumps(body).replace(TOKEN, "?") == json.dumps(unknown).replace(other, "?")
    # Even with a fail action or a too-large body, the secret is checked first.
    refused(api, "api_callback", 404, "token_not_found", **callback("wrong", action="fail"))
    big = "x" * (api.settings.max_value_bytes + 1)
    refused(api, "api_callback", 404, "token_not_found", **callback("wrong", big))
    assert api.ports.tokens.get(TOKEN).status is TokenStatus.PENDING


def test_a_callback_can_fail_or_heartbeat_the_token(api: Api):
    pending_token(api, heartbeat_timeout=30.0)
    status, body = api.call("api_callback", **callback(SECRET, action="heartbeat"))
    assert (status, body["status"]) == (200, "PENDING")
    assert api.ports.tokens.get(TOKEN).last_heartbeat_at is not None
    refused(
        api,
        "api_callback",
        422,
        "validation_error",
        **callback(SECRET, {"error": {"kind": "x"}}, action="fail"),
    )
    failure = {"error": {"type": "Declined", "message": "card declined"}}
    status, body = api.call("api_callback", **callback(SECRET, failure, action="fail"))
    assert (status, body["status"]) == (200, "FAILED")
    error = api.ports.tokens.get(TOKEN).error
    assert (error.type, error.message) == ("Declined", "card declined")


def test_callback_data_above_the_limit_is_413(api: Api):
    pending_token(api)
    big = "x" * (api.settings.max_value_bytes + 1)
    refused(api, "api_callback", 413, "payload_too_large", **callback(SECRET, big))


def test_the_token_routes_are_in_the_openapi_document(api: Api):
    _, document = api.call("api_openapi")
    paths = document["paths"]
    for path in (
        "/tokens/{token_id}/complete",
        "/tokens/{token_id}/fail",
        "/tokens/{token_id}/heartbeat",
        "/tokens/{token_id}",
        "/callbacks/{token_id}",
    ):
        assert path in paths, path


@pytest.mark.parametrize("name", ["api_callback", "api_token_complete"])
def test_a_body_that_is_not_json_is_415_in_the_error_shape(api: Api, name: str):
    pending_token(api)
    headers = {"Content-Type": "text/plain"}
    changes = {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "body": json.dumps("approved"),
    }
    if name == "api_callback":
        changes["query"] = {"secret": SECRET}
    refused(api, name, 415, "unsupported_media_type", **changes)
    assert api.ports.tokens.get(TOKEN).status is TokenStatus.PENDING
