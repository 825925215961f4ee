"""Every route and every error case, as API Gateway delivers them (events/api_*.json), on moto.

Each error case asserts the table and the resume queue are exactly as before it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_support import Api

from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.records import RunQuery

pytestmark = pytest.mark.moto

ORDER = {"order_id": "o-1", "amount_cents": 4200, "email": "a@example.com"}


def refused(api: Api, name: str, status: int, kind: str, **changes: Any) -> dict[str, Any]:
    """Call ``name``; it must answer ``status``/``kind`` and leave table and queue unchanged."""
    table, messages = api.table(), api.queued_messages()
    got, body = api.call(name, **changes)
    assert (got, body["error"]["type"]) == (status, kind), body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert api.table() == table
    assert api.queued_messages() == messages
    return body["error"]


def trigger_event(task_id: str = "process-order", **body: Any) -> dict[str, Any]:
    return {
        "path": f"/tasks/{task_id}/runs",
        "pathParameters": {"task_id": task_id},
        "body": body,
    }


# -- POST /tasks/{task_id}/runs ------------------------------------------------------------


def test_the_stored_trigger_event_creates_a_run_with_its_options(api: Api):
    api.counter.reset()
    status, body = api.call("api_trigger")
    assert status == 202
    # The task's catalog entry is read once, then kept: a trigger is then two requests.
    assert api.counter.snapshot() == {
        "dynamodb.GetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "sqs.SendMessage": 1,
    }
    api.counter.reset()
    api.call("api_trigger", body={"payload": ORDER})
    assert api.counter.snapshot() == {"dynamodb.TransactWriteItems": 1, "sqs.SendMessage": 1}
    run = api.ports.store.get_run(body["run_id"])
    assert (run.task_id, run.queue, run.tags, run.priority) == (
        "process-order",
        "orders",
        ("web",),
        5,
    )
    assert run.metadata == {"source": "checkout"}
    assert json.loads(run.payload)["order_id"] == "o-1"
    assert api.queued_messages() == 2


def test_the_same_key_returns_the_existing_run_and_another_payload_is_409(api: Api):
    _, first = api.call("api_trigger")
    status, again = api.call("api_trigger")
    assert (status, again["run_id"], again["existing"]) == (200, first["run_id"], True)
    changed = {**ORDER, "amount_cents": 1}
    error = refused(
        api,
        "api_trigger",
        409,
        "idempotency_conflict",
        **trigger_event(payload=changed, idempotency_key="order-o-1"),
    )
    assert "different payload" in error["message"]
    assert error["details"]["run_id"] == first["run_id"]


def test_malformed_json_is_400(api: Api):
    refused(api, "api_trigger", 400, "malformed_json", body='{"payload": ')


def test_an_unknown_task_is_404_listing_the_registered_ids(api: Api):
    error = refused(api, "api_trigger", 404, "unknown_task", **trigger_event("refund", payload={}))
    assert error["details"] == {"registered": ["ping", "process-order"]}
    assert "ping, process-order" in error["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**ORDER, "amount_cents": 0}, "amount_cents"),
        ({"order_id": "o-1", "amount_cents": 5}, "email"),
        ({**ORDER, "order_id": 7}, "order_id"),
    ],
)
def test_an_invalid_payload_is_422_naming_the_field(api: Api, payload, field):
    error = refused(api, "api_trigger", 422, "validation_error", **trigger_event(payload=payload))
    assert [d["field"] for d in error["details"]] == [field]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tags": ["t"] * 11}, "body.tags"),
        ({"priority": 10**9}, "body.priority"),
        ({"delay": -1}, "body.delay"),
        ({"queue": "no spaces"}, "body.queue"),
        ({"idempotency_key": ""}, "body.idempotency_key"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_an_invalid_option_is_422_naming_the_field(api: Api, options, field):
    error = refused(
        api, "api_trigger", 422, "validation_error", **trigger_event(payload=ORDER, **options)
    )
    assert field in [d["field"] for d in error["details"]]


def test_metadata_above_its_limit_is_413(api: Api):
    error = refused(
        api,
        "api_trigger",
        413,
        "payload_too_large",
        **trigger_event(payload=ORDER, metadata={"blob": "m" * 40_000}),
    )
    assert error["details"]["limit"] == 32 * 1024


def test_a_payload_above_the_limit_is_413_naming_size_and_limit(api: Api):
    big = {**ORDER, "order_id": "x" * (api.settings.max_value_bytes + 10)}
    error = refused(api, "api_trigger", 413, "payload_too_large", **trigger_event(payload=big))
    assert error["details"]["limit"] == api.settings.max_value_bytes
    assert error["details"]["size"] > api.settings.max_value_bytes
    assert str(api.settings.max_value_bytes) in error["message"]


# -- POST /tasks/{task_id}/batch -----------------------------------------------------------


def test_the_stored_batch_event_creates_each_run(api: Api):
    status, body = api.call("api_batch")
    assert status == 200
    assert body["created"] == 2
    assert [r["status"] for r in body["results"]] == [202, 202]
    for result in body["results"]:
        assert api.ports.store.get_run(result["run_id"]).task_id == "process-order"


def test_a_batch_reports_each_item_and_creates_only_the_valid_ones(api: Api):
    _, first = api.call("api_trigger")
    items = [
        {"payload": ORDER, "idempotency_key": "order-o-1"},  # the existing run
        {"payload": {**ORDER, "amount_cents": 0}},  # invalid
        {"payload": {**ORDER, "amount_cents": 9}, "idempotency_key": "order-o-1"},  # conflict
        {"payload": ORDER, "idempotency_key": "fresh"},
        {"payload": ORDER, "idempotency_key": "fresh"},  # repeats the item before it
        {"payload": {**ORDER, "order_id": "y" * 200_000}},  # too large
    ]
    status, body = api.call("api_batch", body={"items": items})
    assert status == 200
    results = body["results"]
    assert [r["status"] for r in results] == [200, 422, 409, 202, 200, 413]
    assert results[0]["run_id"] == first["run_id"]
    assert results[1]["error"]["details"][0]["field"] == "amount_cents"
    assert results[4]["run_id"] == results[3]["run_id"]
    assert body["created"] == 1
    runs = api.ports.store.list_runs(RunQuery())
    assert {r.run_id for r in runs} == {first["run_id"], results[3]["run_id"]}


def test_a_batch_is_written_in_batches(api: Api):
    items = [{"payload": {**ORDER, "order_id": f"o-{i}"}} for i in range(100)]
    api.counter.reset()
    status, body = api.call("api_batch", body={"items": items})
    assert (status, body["created"]) == (200, 100)
    calls = api.counter.snapshot()
    assert calls["dynamodb.TransactWriteItems"] <= 4  # two actions per run, up to 100 per request
    assert calls["sqs.SendMessageBatch"] == 10
    assert "dynamodb.PutItem" not in calls


def test_a_batch_above_1000_items_or_empty_is_422(api: Api):
    items = [{"payload": ORDER}] * 1001
    error = refused(api, "api_batch", 422, "validation_error", body={"items": items})
    assert error["details"][0]["field"] == "body.items"
    refused(api, "api_batch", 422, "validation_error", body={"items": []})


def test_a_batch_of_an_unknown_task_is_404(api: Api):
    refused(
        api,
        "api_batch",
        404,
        "unknown_task",
        path="/tasks/refund/batch",
        pathParameters={"task_id": "refund"},
    )


def test_a_malformed_batch_is_400(api: Api):
    refused(api, "api_batch", 400, "malformed_json", body="[1, 2")


# -- GET /tasks, /openapi.json ---------------------------------------------------------------


def test_the_catalog_lists_each_task_with_its_payload_schema(api: Api):
    status, body = api.call("api_list_tasks")
    assert status == 200
    tasks = {t["task_id"]: t for t in body["tasks"]}
    assert sorted(tasks) == ["ping", "process-order"]
    schema = tasks["process-order"]["payload_schema"]
    assert schema["required"] == ["order_id", "amount_cents", "email"]
    assert tasks["process-order"]["queue"] == {
        "name": "orders",
        "concurrency_limit": 10,
        "rate_limit": None,
        "rate_period_seconds": None,
    }


def test_the_openapi_document_carries_each_tasks_payload_schema(api: Api):
    status, document = api.call("api_openapi")
    assert status == 200
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    assert schemas["task.process-order.Payload"]["required"] == [
        "order_id",
        "amount_cents",
        "email",
    ]
    assert "/tasks/process-order/runs" in document["paths"]
    for path in ("/tasks/{task_id}/runs", "/tasks/{task_id}/batch", "/runs", "/runs/{run_id}"):
        assert path in document["paths"]


# -- GET /runs -----------------------------------------------------------------------------


def _trigger_orders(api: Api, count: int, **options: Any) -> list[str]:
    ids = []
    for i in range(count):
        body = {"payload": {**ORDER, "order_id": f"o-{i}"}, **options}
        status, created = api.call("api_trigger", body=body)
        assert status == 202
        ids.append(created["run_id"])
    return ids


def test_runs_page_newest_first_through_the_cursor(api: Api):
    ids = _trigger_orders(api, 5)
    seen, cursor = [], None
    while True:
        query = {"task": "process-order", "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = api.call("api_list_runs", query=query)
        assert status == 200
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_runs_filter_by_status_tag_and_created_range(api: Api):
    plain = _trigger_orders(api, 2)
    tagged = _trigger_orders(api, 2, tags=["vip"])
    _, page = api.call("api_list_runs", query={"tag": "vip"})
    assert [r["run_id"] for r in page["runs"]] == tagged[::-1]
    _, page = api.call("api_list_runs", query={"status": "QUEUED", "task": "process-order"})
    assert len(page["runs"]) == 4
    _, page = api.call("api_list_runs", query={"status": "COMPLETED"})
    assert page["runs"] == []
    first = api.ports.store.get_run(plain[1]).created_at.isoformat()
    _, page = api.call("api_list_runs", query={"created_to": first})
    assert [r["run_id"] for r in page["runs"]] == plain[::-1]


def test_a_forged_cursor_is_400(api: Api):
    _trigger_orders(api, 3)
    _, page = api.call("api_list_runs", query={"limit": "1"})
    cursor = page["next_cursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    refused(api, "api_list_runs", 400, "bad_cursor", query={"limit": "1", "cursor": tampered})
    refused(api, "api_list_runs", 400, "bad_cursor", query={"cursor": "not-a-cursor"})


def test_a_cursor_of_another_query_is_400(api: Api):
    _trigger_orders(api, 3)
    _, page = api.call("api_list_runs", query={"limit": "1"})
    error = refused(
        api,
        "api_list_runs",
        400,
        "bad_cursor",
        query={"limit": "1", "task": "ping", "cursor": page["next_cursor"]},
    )
    assert "another query" in error["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "DONE"}, "query.status"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "101"}, "query.limit"),
        ({"created_from": "yesterday"}, "query.created_from"),
    ],
)
def test_an_invalid_listing_query_is_422(api: Api, query, field):
    error = refused(api, "api_list_runs", 422, "validation_error", query=query)
    assert field in [d["field"] for d in error["details"]]


# -- GET /runs/{run_id} --------------------------------------------------------------------


def test_a_run_reads_with_its_timeline_and_large_values_by_reference(api: Api):
    big = {**ORDER, "order_id": "z" * 10_000}
    _, created = api.call("api_trigger", body={"payload": big})
    run_id = created["run_id"]
    status, run = api.call("api_get_run", path=f"/runs/{run_id}", pathParameters={"run_id": run_id})
    assert status == 200
    assert (run["run_id"], run["status"], run["task_id"]) == (run_id, "QUEUED", "process-order")
    assert run["payload"]["inline"] is False
    assert run["payload"]["size"] > 10_000
    assert "value" not in run["payload"] or run["payload"]["value"] is None
    assert [line["kind"] for line in run["timeline"]] == ["triggered"]
    status, full = api.call(
        "api_get_run",
        path=f"/runs/{run_id}",
        pathParameters={"run_id": run_id},
        query={"include": "values"},
    )
    assert full["payload"]["value"] == big


def test_an_unknown_run_is_404(api: Api):
    refused(api, "api_get_run", 404, "run_not_found")


def test_an_unknown_include_is_422(api: Api):
    refused(api, "api_get_run", 422, "validation_error", query={"include": "everything"})


# -- POST /runs/{run_id}/cancel -----------------------------------------------------------


def _cancel_event(run_id: str) -> dict[str, Any]:
    return {"path": f"/runs/{run_id}/cancel", "pathParameters": {"run_id": run_id}}


def test_the_stored_cancel_event_cancels_a_queued_run(api: Api):
    _, created = api.call("api_trigger", body={"payload": ORDER})
    run_id = created["run_id"]

    status, run = api.call("api_cancel_run", **_cancel_event(run_id))

    assert status == 200
    assert (run["run_id"], run["status"]) == (run_id, "CANCELED")
    assert run["error"]["type"] == "RunCanceled"
    assert [line["kind"] for line in run["timeline"]] == ["triggered", "canceled"]
    assert api.ports.store.get_run(run_id).status.value == "CANCELED"


def test_cancel_of_an_unknown_run_is_404(api: Api):
    refused(api, "api_cancel_run", 404, "run_not_found")


def test_cancel_of_a_finished_run_is_409_and_changes_nothing(api: Api):
    _, created = api.call("api_trigger", body={"payload": ORDER})
    run_id = created["run_id"]
    api.call("api_cancel_run", **_cancel_event(run_id))

    error = refused(api, "api_cancel_run", 409, "run_finished", **_cancel_event(run_id))

    assert error["details"] == {"status": "CANCELED"}
    assert "already finished CANCELED" in error["message"]


# -- queues --------------------------------------------------------------------------------


def test_queues_list_and_control(api: Api):
    status, body = api.call("api_list_queues")
    assert status == 200
    orders = next(q for q in body["queues"] if q["name"] == "orders")
    assert (orders["code_limit"], orders["paused"]) == (10, False)
    status, paused = api.call("api_queue_pause")
    assert (status, paused["paused"]) == (200, True)
    status, limited = api.call("api_queue_limit")
    assert (status, limited["limit"], limited["limit_override"]) == (200, 5, 5)
    status, resumed = api.call("api_queue_resume")
    assert (status, resumed["paused"], resumed["limit"]) == (200, False, 5)
    _, cleared = api.call("api_queue_limit", body={"limit": None})
    assert cleared["limit"] == 10
    _, body = api.call("api_list_queues")
    assert next(q for q in body["queues"] if q["name"] == "orders")["limit"] == 10


def test_an_unknown_queue_is_404(api: Api):
    for action in ("pause", "resume", "limit"):
        error = refused(
            api,
            f"api_queue_{action}",
            404,
            "queue_not_found",
            path=f"/queues/nope/{action}",
            pathParameters={"name": "nope"},
        )
        assert "orders" in error["details"]["queues"]


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": "many"}, {}, {"limit": 3, "x": 1}])
def test_an_invalid_limit_is_422(api: Api, body):
    refused(api, "api_queue_limit", 422, "validation_error", body=body)


def test_a_malformed_queue_control_is_400(api: Api):
    refused(api, "api_queue_pause", 400, "malformed_json", body="{")


# -- anything else -------------------------------------------------------------------------


def test_an_unknown_route_is_404_in_the_error_shape(api: Api):
    refused(api, "api_list_tasks", 404, "route_not_found", path="/nothing", resource="/nothing")


# -- POST /runs/{run_id}/replay ------------------------------------------------------------


def _run_with_journal(api: Api) -> str:
    """A run of ``ping`` whose journal recorded ``fetch`` then ``charge`` (as a worker would)."""
    _, created = api.call("api_trigger", **trigger_event("ping", payload=7))
    run_id = created["run_id"]
    entries = [
        JournalEntry(i, name, 0, EntryKind.STEP, EntryStatus.COMPLETED, result=str(i), position=i)
        for i, name in enumerate(["fetch", "charge"])
    ]
    api.ports.store.write_journal(run_id, entries)
    return run_id


def replay_event(run_id: str, **body: Any) -> dict[str, Any]:
    return {"path": f"/runs/{run_id}/replay", "pathParameters": {"run_id": run_id}, "body": body}


def test_the_stored_replay_event_starts_a_linked_run_from_the_named_step(api: Api):
    run_id = _run_with_journal(api)
    status, body = api.call("api_replay_run", **replay_event(run_id, from_step="charge"))
    assert status == 202, body
    assert (body["task_id"], body["replay_of"]) == ("ping", run_id)
    new = body["run_id"]
    assert new != run_id
    status, run = api.call("api_get_run", path=f"/runs/{new}", pathParameters={"run_id": new})
    assert (status, run["replay_of"], run["status"]) == (200, run_id, "QUEUED")
    assert [(line["kind"], line["name"]) for line in run["timeline"] if line["kind"] == "step"] == [
        ("step", "fetch")
    ]
    assert run["payload"]["value"] == 7
    assert api.queued_messages() == 2  # the original's first message and the replay's


def test_a_replay_with_a_new_payload_and_no_step_copies_nothing(api: Api):
    run_id = _run_with_journal(api)
    status, body = api.call("api_replay_run", **replay_event(run_id, payload=9))
    assert status == 202, body
    new = body["run_id"]
    assert api.ports.store.load_journal(new) == []
    assert api.ports.store.get_run(new).payload == "9"


def test_a_replay_without_a_body_starts_from_the_start_with_the_same_payload(api: Api):
    run_id = _run_with_journal(api)
    status, body = api.call("api_replay_run", **{**replay_event(run_id), "body": None})
    assert status == 202, body
    new = api.ports.store.get_run(body["run_id"])
    assert (new.payload, new.replay_of) == ("7", run_id)
    assert api.ports.store.load_journal(new.run_id) == []


def test_a_replay_of_an_unknown_run_is_404(api: Api):
    refused(api, "api_replay_run", 404, "run_not_found")


def test_a_replay_from_an_unknown_step_is_422_naming_it_and_the_steps(api: Api):
    run_id = _run_with_journal(api)
    error = refused(
        api, "api_replay_run", 422, "unknown_step", **replay_event(run_id, from_step="chrage")
    )
    assert error["details"] == {"step": "chrage", "steps": ["fetch", "charge"]}
    assert "'chrage'" in error["message"]


def test_a_replay_with_an_invalid_payload_is_422_naming_the_field(api: Api):
    _, created = api.call("api_trigger", body={"payload": ORDER})
    run_id = created["run_id"]
    bad = {**ORDER, "amount_cents": 0}
    error = refused(
        api, "api_replay_run", 422, "validation_error", **replay_event(run_id, payload=bad)
    )
    assert "amount_cents" in [d["field"] for d in error["details"]]


def test_a_replay_payload_above_the_limit_is_413(api: Api):
    _, created = api.call("api_trigger", body={"payload": ORDER})
    big = {**ORDER, "email": "a" * (api.settings.max_value_bytes + 1)}
    refused(
        api,
        "api_replay_run",
        413,
        "payload_too_large",
        **replay_event(created["run_id"], payload=big),
    )


def test_a_body_of_another_content_type_is_415_in_the_error_shape(api: Api):
    run_id = _run_with_journal(api)
    for name, changes in [
        ("api_replay_run", replay_event(run_id)),
        ("api_trigger", trigger_event("ping", payload=1)),
    ]:
        plain = {
            **changes,
            "body": "payload=1",
            "headers": {"Content-Type": "text/plain"},
            "multiValueHeaders": {"Content-Type": ["text/plain"]},
        }
        error = refused(api, name, 415, "unsupported_media_type", **plain)
        assert "text/plain" in error["message"]


def test_a_malformed_or_unknown_replay_body_is_refused(api: Api):
    run_id = _run_with_journal(api)
    malformed = {**replay_event(run_id), "body": "{nope"}
    refused(api, "api_replay_run", 400, "malformed_json", **malformed)
    refused(api, "api_replay_run", 422, "validation_error", **replay_event(run_id, step="x"))
    refused(api, "api_replay_run", 422, "validation_error", **replay_event(run_id, from_step=""))
