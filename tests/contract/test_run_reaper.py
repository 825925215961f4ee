"""Retention: when TTL removes a finished run's META item, the reaper deletes the rest of it.

The table's stream is not emulated by moto, so the stream records are built as
DynamoDB Streams delivers a TTL deletion (``userIdentity`` of the service,
keys only) and handed to the handler Lambda would run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from contract_backends import Backend
from faults import Fault, FaultInjector

from durable_lambda import lambda_entry, step, task, wait
from durable_lambda.adapters.aws import ports as aws_ports_module
from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb.retention import PartitionReaper, expired_run
from durable_lambda.engine.state import RunStatus
from durable_lambda.lambda_entry import reaper_handler
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

STEPS = 30  # more entries than one BatchWriteItem takes


def _finished_runs(aws: Backend, count: int) -> list[str]:
    registry = TaskRegistry()

    @step
    def stamp(i: int) -> int:
        return i

    @task(id="kept", registry=registry)
    async def kept(payload: int) -> int:
        for i in range(STEPS):
            await stamp(i)
        await wait.for_(seconds=1)
        return payload

    runner = LocalRunner(registry=registry, store=aws.store, flow=aws.flow)
    run_ids = [runner.trigger(kept, i).run_id for i in range(count)]
    runner.drain()
    assert {runner.client.get_run(r).status for r in run_ids} == {RunStatus.COMPLETED}
    return run_ids


def _items(aws: Backend, run_id: str) -> list[dict[str, Any]]:
    response = aws.store.client.query(  # type: ignore[attr-defined]
        TableName=aws.settings.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": items.run_pk(run_id)}},
        ConsistentRead=True,
    )
    return list(response["Items"])


def _partition(aws: Backend, run_id: str) -> list[str]:
    return [item["sk"]["S"] for item in _items(aws, run_id)]


def _expire(aws: Backend, run_id: str) -> None:
    """What DynamoDB's TTL does once ``ttl`` passed: delete the META item, nothing else."""
    aws.store.client.delete_item(  # type: ignore[attr-defined]
        TableName=aws.settings.table_name,
        Key={"pk": {"S": items.run_pk(run_id)}, "sk": {"S": items.META}},
    )


def _record(run_id: str, seq: int, *, by_ttl: bool = True, sk: str = items.META) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventID": f"e{seq}",
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": items.run_pk(run_id)}, "sk": {"S": sk}},
            "SequenceNumber": f"{seq:021d}",
            "SizeBytes": 40,
            "StreamViewType": "KEYS_ONLY",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/runs/stream/x",
    }
    if by_ttl:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


@pytest.fixture
def handler_env(aws: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    monkeypatch.setenv("DL_TABLE_NAME", aws.settings.table_name)
    session = aws.extra["session"]
    monkeypatch.setattr(aws_ports_module, "reaper_client", lambda: session.client("dynamodb"))
    lambda_entry.reset()  # the handler keeps its client per execution environment
    yield aws
    lambda_entry.reset()


def test_a_run_expired_by_ttl_leaves_nothing_behind_and_others_are_untouched(handler_env):
    aws = handler_env
    gone, kept = _finished_runs(aws, 2)
    assert len(_partition(aws, gone)) > STEPS  # journal entries and timeline events
    before = _partition(aws, kept)
    # Only the META carries ttl, so TTL deletes it alone.
    assert [i["sk"]["S"] for i in _items(aws, gone) if "ttl" in i] == [items.META]

    _expire(aws, gone)
    response = reaper_handler({"Records": [_record(gone, 1)]}, None)

    assert response == {"batchItemFailures": []}
    assert _partition(aws, gone) == []
    assert _partition(aws, kept) == before
    # A redelivered record finds nothing left and succeeds.
    assert reaper_handler({"Records": [_record(gone, 1)]}, None) == {"batchItemFailures": []}


def test_only_ttl_removals_of_a_runs_meta_item_are_expiries(handler_env):
    aws = handler_env
    [run_id] = _finished_runs(aws, 1)
    before = _partition(aws, run_id)
    not_expiries = [
        _record(run_id, 1, by_ttl=False),  # a person deleted it
        _record(run_id, 2, sk="STEP#0000000001"),  # not a META item
        {**_record(run_id, 3), "eventName": "MODIFY"},
    ]
    assert [expired_run(r) for r in not_expiries] == [None, None, None]
    assert expired_run(_record(run_id, 4)) == run_id
    # The META still there (a record that lied): nothing is deleted, and no retry.
    response = reaper_handler({"Records": [*not_expiries, _record(run_id, 4)]}, None)
    assert response == {"batchItemFailures": []}
    assert _partition(aws, run_id) == before


def test_a_record_whose_deletes_keep_failing_is_retried_alone(handler_env, monkeypatch):
    aws = handler_env
    first, second = _finished_runs(aws, 2)
    _expire(aws, first)
    _expire(aws, second)
    client = aws.extra["session"].client("dynamodb")
    faults = FaultInjector().attach(client)
    # Every attempt of the first BatchWriteItem call is throttled past botocore's retries.
    faults.inject("BatchWriteItem", Fault.THROTTLE, calls={1}, attempts=100)
    monkeypatch.setattr(aws_ports_module, "reaper_client", lambda: client)
    lambda_entry.reset()  # a new execution environment, with the faulted client

    response = reaper_handler({"Records": [_record(first, 1), _record(second, 2)]}, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": f"{1:021d}"}]}
    assert _partition(aws, second) == []
    assert _partition(aws, first)  # left for the retry
    assert reaper_handler({"Records": [_record(first, 1)]}, None) == {"batchItemFailures": []}
    assert _partition(aws, first) == []


def test_a_partition_larger_than_a_query_page_is_deleted_whole(aws: Backend):
    [run_id] = _finished_runs(aws, 1)
    _expire(aws, run_id)
    client = aws.extra["session"].client("dynamodb")
    queries: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 7
        queries.append(1)

    client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    deleted = PartitionReaper(client, aws.settings.table_name).reap(run_id)
    assert len(queries) > 1
    assert deleted > STEPS
    assert _partition(aws, run_id) == []
