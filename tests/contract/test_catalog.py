"""The task catalog: published once per version, read to trigger a task whose code is absent."""

from __future__ import annotations

from typing import Annotated

import pytest
from contract_backends import Backend
from pydantic import BaseModel, Field

from durable_lambda import Queue, RetryPolicy, task
from durable_lambda.adapters.aws.dynamodb.catalog import DynamoDBCatalogStore
from durable_lambda.adapters.memory.catalog import MemoryCatalogStore
from durable_lambda.adapters.memory.queue import MemoryResumeQueue
from durable_lambda.catalog import CatalogStore, describe, publish
from durable_lambda.client import Client
from durable_lambda.clock import SystemClock
from durable_lambda.engine.records import EventKind, RunQuery
from durable_lambda.errors import PayloadValidationError, UnknownTaskError
from durable_lambda.task import TaskRegistry
from durable_lambda.testing.aws_counter import RequestCounter


class Order(BaseModel):
    order_id: str
    amount: Annotated[int, Field(gt=0)]


def _registry(retries: int = 3) -> TaskRegistry:
    registry = TaskRegistry()

    @task(
        id="charge",
        registry=registry,
        queue=Queue("payments", concurrency_limit=4),
        retry=RetryPolicy(max_attempts=retries),
        cron=None,
    )
    async def charge(payload: Order) -> dict[str, int]:
        return {"charged": payload.amount}

    @task(id="ping", registry=registry)
    async def ping(payload: int) -> int:
        return payload

    return registry


@pytest.fixture
def catalog(backend: Backend) -> CatalogStore:
    if backend.name == "memory":
        return MemoryCatalogStore()
    ports = backend.extra["ports"]
    return DynamoDBCatalogStore(ports.store.client, backend.settings.table_name)


def _writes(backend: Backend, catalog: CatalogStore, counter: RequestCounter | None) -> int:
    if isinstance(catalog, MemoryCatalogStore):
        return catalog.write_requests
    assert counter is not None
    return counter.dynamodb_writes()


def _client(backend: Backend, catalog: CatalogStore, registry: TaskRegistry) -> Client:
    ports = backend.extra.get("ports")
    clock = SystemClock()
    queue = ports.queue if ports is not None else MemoryResumeQueue(clock.now)
    return Client(store=backend.store, queue=queue, clock=clock, registry=registry, catalog=catalog)


def test_a_description_carries_the_schemas_queue_retry_and_a_version():
    description = describe(_registry().get("charge"))
    assert description.payload_schema["required"] == ["order_id", "amount"]
    assert description.payload_schema["properties"]["amount"]["exclusiveMinimum"] == 0
    assert description.output_schema["type"] == "object"
    assert (description.queue.name, description.queue.concurrency_limit) == ("payments", 4)
    assert description.retry.max_attempts == 3
    assert len(description.version) == 32
    assert describe(_registry().get("charge")).version == description.version
    assert describe(_registry(retries=5).get("charge")).version != description.version


def test_an_unchanged_cold_start_reads_once_and_writes_nothing(backend: Backend, catalog):
    counter = None
    if not isinstance(catalog, MemoryCatalogStore):
        counter = RequestCounter().attach(backend.extra["ports"].store.client)
    assert publish(_registry(), catalog) == ["charge", "ping"]
    assert _writes(backend, catalog, counter) == 2
    if counter is not None:
        counter.reset()
    before = _writes(backend, catalog, counter)
    assert publish(_registry(), catalog) == []
    assert _writes(backend, catalog, counter) == before
    if counter is not None:
        assert counter.snapshot() == {"dynamodb.BatchGetItem": 1}
    assert [d.task_id for d in catalog.list()] == ["charge", "ping"]


def test_a_changed_task_is_written_once(backend: Backend, catalog):
    publish(_registry(), catalog)
    assert publish(_registry(retries=5), catalog) == ["charge"]
    stored = catalog.get("charge")
    assert stored is not None
    assert stored.retry.max_attempts == 5
    assert stored == describe(_registry(retries=5).get("charge"))
    assert publish(_registry(retries=5), catalog) == []


def test_a_put_of_a_version_already_stored_writes_nothing(backend: Backend, catalog):
    description = describe(_registry().get("ping"))
    assert catalog.put(description) is True
    assert catalog.put(description) is False  # a concurrent cold start, or a retried put
    assert catalog.get("nope") is None


def test_trigger_by_id_without_the_code_validates_against_the_stored_schema(
    backend: Backend, catalog
):
    publish(_registry(), catalog)
    client = _client(backend, catalog, TaskRegistry())  # imports no task
    handle = client.trigger("charge", {"order_id": "o-1", "amount": 5}, tags=["api"])
    run = backend.store.get_run(handle.run_id)
    assert run is not None
    assert (run.task_id, run.queue, run.tags) == ("charge", "payments", ("api",))
    assert [e.kind for e in backend.store.list_events(run.run_id)] == [EventKind.TRIGGERED]


def test_an_invalid_payload_by_id_names_the_field_and_creates_nothing(backend: Backend, catalog):
    publish(_registry(), catalog)
    client = _client(backend, catalog, TaskRegistry())
    with pytest.raises(PayloadValidationError) as caught:
        client.trigger("charge", {"order_id": "o-1", "amount": 0})
    assert [loc for loc, _ in caught.value.errors] == ["amount"]
    with pytest.raises(PayloadValidationError) as caught:
        client.trigger("charge", {"amount": 3})
    assert caught.value.errors == [("order_id", "Field required")]
    assert backend.store.list_runs(RunQuery(task_id="charge")) == []


def test_an_unknown_id_lists_the_catalogued_tasks(backend: Backend, catalog):
    publish(_registry(), catalog)
    client = _client(backend, catalog, TaskRegistry())
    with pytest.raises(UnknownTaskError, match="known: charge, ping"):
        client.trigger("refund", {})


def test_a_function_cold_start_publishes_its_tasks_once(aws: Backend):
    from durable_lambda import lambda_entry  # noqa: PLC0415

    settings = aws.settings.with_(task_modules=("functions.tasks.reports",))
    lambda_entry.reset()
    try:
        app = lambda_entry._build(settings)
        stored = DynamoDBCatalogStore(aws.extra["ports"].store.client, settings.table_name)
        ids = [d.task_id for d in stored.list()]
        assert {"render-report", "nightly-digest"} <= set(ids)
        assert lambda_entry.publish_catalog(app.ports) == []  # the next cold start
    finally:
        lambda_entry.reset()
