"""The DynamoDB request budget of the hot path, counted on moto (the benchmarks rely on it)."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda import task
from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.client import Client
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.metadata import encode_doc
from durable_lambda.engine.records import (
    Checkpoint,
    EventKind,
    Fence,
    ResumeMessage,
    RunRecord,
    TimelineEvent,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import LeaseLostError
from durable_lambda.task import TaskRegistry
from durable_lambda.testing.aws_counter import RequestCounter
from durable_lambda.values import StoredValue

pytestmark = pytest.mark.moto

OWNER = "owner-a"


def entry(seq: int, result: str = '"ok"') -> JournalEntry:
    return JournalEntry(seq, "step", seq, EntryKind.STEP, EntryStatus.COMPLETED, result=result)


def test_taking_a_lease_is_one_request_whatever_the_outcome(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    for owner, now in (("owner-a", 10), ("owner-b", 20)):  # TAKEN, then BUSY
        aws.counter.reset()
        aws.store.take_lease(run.run_id, 0, owner, at(300), at(now))
        assert aws.counter.snapshot() == {"dynamodb.UpdateItem": 1}
    aws.counter.reset()
    aws.store.take_lease("run_missing", 0, OWNER, at(300), at(10))
    assert aws.counter.snapshot() == {"dynamodb.UpdateItem": 1}


def test_recording_a_step_is_one_write_request(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    aws.counter.reset()
    aws.store.record_entry(run.run_id, Fence(OWNER, 0), entry(0))
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}
    aws.counter.reset()
    with pytest.raises(LeaseLostError):
        aws.store.record_entry(run.run_id, Fence("owner-b", 0), entry(1))
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}


def test_metadata_riding_on_a_step_record_costs_no_request_of_its_own(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    aws.counter.reset()
    document = encode_doc({"progress": 0.5}, {"m:": 1})
    aws.store.record_entry(run.run_id, Fence(OWNER, 0), entry(0), document)
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}
    aws.counter.reset()
    with pytest.raises(LeaseLostError):
        aws.store.record_entry(run.run_id, Fence("owner-b", 0), entry(1), document)
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}


def test_a_checkpoint_is_one_write_request_and_no_read(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    aws.counter.reset()
    aws.store.checkpoint(
        run.run_id,
        Fence(OWNER, 0),
        Checkpoint(
            status=RunStatus.SUSPENDED,
            wake_at=at(5000),
            new_epoch=True,
            timer=True,
            entries=(entry(0), entry(1)),
            events=(
                TimelineEvent(at(10), EventKind.INVOCATION_STARTED),
                TimelineEvent(at(11), EventKind.SUSPENDED),
            ),
        ),
    )
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}


def test_a_checkpoint_without_the_taken_record_reads_it_once(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    other = aws.other_store()
    aws.counter.attach(other.client)  # type: ignore[attr-defined]
    aws.counter.reset()
    other.checkpoint(
        run.run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.COMPLETED, output="1")
    )
    assert aws.counter.snapshot() == {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1}


def test_a_checkpoint_too_large_for_one_transaction_is_split_and_complete(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    entries = tuple(entry(seq) for seq in range(150))
    aws.counter.reset()
    after = aws.store.checkpoint(
        run.run_id,
        Fence(OWNER, 0),
        Checkpoint(status=RunStatus.COMPLETED, output="1", entries=entries),
    )
    # 100 actions per transaction, one of them the fence check of the early batch.
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 2}
    assert after.status is RunStatus.COMPLETED
    assert aws.store.load_journal(run.run_id) == list(entries)


def test_loading_a_journal_of_a_thousand_entries_is_one_query_per_page(aws: Backend):
    assert aws.counter is not None
    run = aws.new_run()
    client = aws.store.client  # type: ignore[attr-defined]
    result = '"' + "r" * 1500 + '"'
    entries = [entry(seq, result) for seq in range(1000)]
    # Seeded with batch writes: moto copies the whole table on every transaction.
    for start in range(0, len(entries), 25):
        client.batch_write_item(
            RequestItems={
                aws.settings.table_name: [
                    {
                        "PutRequest": {
                            "Item": items.entry_item(
                                run.run_id, e, StoredValue(inline=e.result), None
                            )
                        }
                    }
                    for e in entries[start : start + 25]
                ]
            }
        )
    pages = client.get_paginator("query").paginate(
        TableName=aws.settings.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"RUN#{run.run_id}"}, ":p": {"S": "STEP#"}},
    )
    page_count = sum(1 for _ in pages)
    assert page_count >= 2  # about 1.6 MB of entries: DynamoDB pages at 1 MB

    aws.counter.reset()
    assert aws.store.load_journal(run.run_id) == entries
    assert aws.counter.snapshot() == {"dynamodb.Query": page_count}


def test_reading_250_runs_is_one_batch_get_per_100(aws: Backend):
    """A parent reads its children's states in batches, not one GetItem each."""
    assert aws.counter is not None
    runs = [aws.new_run() for _ in range(250)]
    aws.counter.reset()
    got = aws.store.get_runs([r.run_id for r in runs])
    assert [r.run_id if r else None for r in got] == [r.run_id for r in runs]
    assert aws.counter.snapshot() == {"dynamodb.BatchGetItem": 3}


def test_creating_100_children_takes_a_transaction_per_33(aws: Backend):
    """Each child is a claim, a META item and its event: 33 children fill a transaction."""
    assert aws.counter is not None
    runs = [
        RunRecord(
            run_id=f"run_kid_{i:04d}",
            task_id="kid",
            status=RunStatus.QUEUED,
            payload="1",
            created_at=at(1),
            updated_at=at(1),
            idempotency_key=f"parent:kids#0:{i}",
        )
        for i in range(100)
    ]
    events = [TimelineEvent(at(1), EventKind.TRIGGERED, "") for _ in runs]
    aws.counter.reset()
    aws.store.create_runs(runs, events)
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 4}


def test_sending_25_resume_messages_takes_3_batch_requests(aws: Backend):
    ports = aws.extra["ports"]
    counter = RequestCounter().attach(ports.queue.client)
    ports.queue.send_batch([ResumeMessage(f"run_{i}", 0) for i in range(25)], 0)
    assert counter.snapshot() == {"sqs.SendMessageBatch": 3}
    sqs = ports.queue.client
    received = 0
    while True:
        got = sqs.receive_message(QueueUrl=ports.queue.queue_url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            break
        received += len(got["Messages"])
    assert received == 25


def test_counting_a_childs_end_is_one_request_whatever_the_outcome(aws: Backend):
    """A batch's nudges cost their parent one update each, not a wake-up and a read of all."""
    assert aws.counter is not None
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, OWNER, at(60), at(10))
    awaiting = Checkpoint(
        status=RunStatus.SUSPENDED,
        wake_at=at(3600),
        new_epoch=True,
        waiting_children=True,
        awaited_children=frozenset({"run_a", "run_b"}),
        awaited_wake=0,
    )
    aws.store.checkpoint(run.run_id, Fence(OWNER, 0), awaiting)
    for child, wakes in (("run_a", False), ("run_a", False), ("run_b", True), ("run_b", True)):
        aws.counter.reset()
        assert aws.store.note_child_end(run.run_id, child) is wakes
        assert aws.counter.snapshot() == {"dynamodb.UpdateItem": 1}


def _trigger_client(aws: Backend):
    registry = TaskRegistry()

    @task(id="budget-trigger", registry=registry)
    async def budget_trigger(payload: dict) -> None:
        return None

    ports = aws.extra["ports"]
    client = Client(store=ports.store, queue=ports.queue, clock=ports.clock, registry=registry)
    return client, RequestCounter().attach(ports.store.client, ports.queue.client)


@pytest.mark.parametrize("key", [None, "order-1"])
def test_a_trigger_is_two_requests_its_event_folded_into_the_create(aws: Backend, key):
    client, counter = _trigger_client(aws)
    handle = client.trigger("budget-trigger", {"n": 1}, idempotency_key=key)
    assert counter.snapshot() == {"dynamodb.TransactWriteItems": 1, "sqs.SendMessage": 1}
    assert [e.kind for e in aws.store.list_events(handle.run_id)] == [EventKind.TRIGGERED]
