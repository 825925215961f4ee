"""AWS specifics the memory reference has no counterpart for: item layout, S3, SQS, resources."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from contract_backends import SETTINGS, Backend, at

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.memory import MemoryResumeQueue
from durable_lambda.engine.records import Checkpoint, Fence, ResumeMessage, RunQuery, RunRecord
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ConfigurationError, IdempotencyClaimConflictError, LeaseLostError
from durable_lambda.messages import decode_message

pytestmark = pytest.mark.moto

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def meta(aws: Backend, run_id: str) -> dict[str, Any]:
    client = aws.store.client  # type: ignore[attr-defined]
    return client.get_item(
        TableName=aws.settings.table_name, Key=items.key(f"RUN#{run_id}", "META")
    )["Item"]


def test_a_running_run_is_indexed_by_lease_expiry_and_others_by_creation(aws: Backend):
    run = aws.new_run()
    assert meta(aws, run.run_id)["gsi2pk"] == {"S": "STATUS#QUEUED"}
    assert meta(aws, run.run_id)["gsi2sk"] == {"S": f"{items.iso(run.created_at)}#{run.run_id}"}
    aws.store.take_lease(run.run_id, 0, "owner", at(300), at(10))
    item = meta(aws, run.run_id)
    assert item["gsi2pk"] == {"S": "STATUS#RUNNING"}
    assert item["gsi2sk"] == {"S": f"{items.iso(at(300))}#{run.run_id}"}
    assert item["gsi1pk"] == {"S": "TASK#orders"}
    assert "ttl" not in item


def test_a_finished_run_expires_after_the_retention(aws: Backend):
    run = aws.new_run()
    aws.store.take_lease(run.run_id, 0, "owner", at(300), at(10))
    done = aws.store.checkpoint(
        run.run_id, Fence("owner", 0), Checkpoint(status=RunStatus.COMPLETED)
    )
    assert done.finished_at is not None
    retention = dt.timedelta(days=SETTINGS.retention_days)
    item = meta(aws, run.run_id)
    assert item["ttl"] == {"N": str(int((done.finished_at + retention).timestamp()))}
    assert item["gsi2sk"] == {"S": f"{items.iso(run.created_at)}#{run.run_id}"}


def test_an_idempotency_claim_whose_run_is_gone_is_taken_again(aws: Backend):
    first = aws.new_run(idempotency_key="k")
    client = aws.store.client  # type: ignore[attr-defined]
    # As after the run's retention: the META item is deleted by TTL, the claim is not.
    client.delete_item(
        TableName=aws.settings.table_name, Key=items.key(f"RUN#{first.run_id}", "META")
    )
    fresh = RunRecord(
        "run_new", "orders", RunStatus.QUEUED, "{}", at(500), at(500), idempotency_key="k"
    )
    assert aws.store.create_run(fresh) == fresh
    assert aws.store.create_run(
        RunRecord(
            "run_third", "orders", RunStatus.QUEUED, "{}", at(600), at(600), idempotency_key="k"
        )
    ) == aws.store.get_run("run_new")


def test_a_claim_contended_on_every_attempt_raises_a_claim_conflict(
    aws: Backend, monkeypatch: pytest.MonkeyPatch
):
    client = aws.store.client  # type: ignore[attr-defined]
    tries: list[int] = []

    def always_conflicted(**_: Any) -> None:
        # What DynamoDB answers while another transaction on the claim is in flight.
        tries.append(1)
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
            },
            "TransactWriteItems",
        )

    monkeypatch.setattr(client, "transact_write_items", always_conflicted)
    run = RunRecord("run_c", "orders", RunStatus.QUEUED, "{}", at(1), at(1), idempotency_key="k")
    with pytest.raises(IdempotencyClaimConflictError, match="'k'") as raised:
        aws.store.create_run(run)
    # A claim conflict is no lease lost: nobody held this run.
    assert not isinstance(raised.value, LeaseLostError)
    assert raised.value.idempotency_key == "k"
    assert len(tries) > 1
    assert aws.store.get_run("run_c") is None


def test_a_blob_written_twice_is_kept_once(aws: Backend):
    blobs = aws.extra["ports"].blobs
    blobs.put("values/sha256/abc", b"same bytes")
    blobs.put("values/sha256/abc", b"same bytes")
    assert blobs.get("values/sha256/abc") == b"same bytes"
    assert aws.blob_count() == 1
    with pytest.raises(KeyError):
        blobs.get("values/sha256/missing")


def test_a_resume_message_carries_only_the_run_and_epoch(aws: Backend):
    ports = aws.extra["ports"]
    ports.queue.send(ResumeMessage("run_1", 4), 0)
    sqs = aws.extra["session"].client("sqs")
    received = sqs.receive_message(QueueUrl=aws.settings.resume_queue_url, MaxNumberOfMessages=10)
    (message,) = received["Messages"]
    assert json.loads(message["Body"]) == {"run_id": "run_1", "epoch": 4}
    assert decode_message(message["Body"]) == ResumeMessage("run_1", 4)
    ports.queue.retry_later(message["ReceiptHandle"], 0)


def test_a_delayed_resume_message_is_not_delivered_early(aws: Backend):
    aws.extra["ports"].queue.send(ResumeMessage("run_1", 0), 900)
    sqs = aws.extra["session"].client("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=aws.settings.resume_queue_url)


@pytest.mark.parametrize("delay", [-1, 901])
def test_a_delay_outside_sqs_range_is_refused(aws: Backend, delay: int):
    with pytest.raises(ValueError, match=r"0\.\.900"):
        aws.extra["ports"].queue.send(ResumeMessage("run_1", 0), delay)


@pytest.mark.parametrize("delay", [-1, 901])
def test_a_delay_outside_sqs_range_is_a_configuration_error_on_both_queues(
    aws: Backend, delay: int
):
    for queue in (aws.extra["ports"].queue, MemoryResumeQueue(lambda: at(0))):
        with pytest.raises(ConfigurationError, match=r"delay_seconds must be 0\.\.900"):
            queue.send(ResumeMessage("run_1", 0), delay)


def test_dead_letters_are_read_with_their_receive_count_and_deleted(aws: Backend):
    dead_letters = aws.extra["ports"].dead_letters
    sqs = aws.extra["session"].client("sqs")
    sqs.send_message(QueueUrl=aws.settings.dlq_url, MessageBody='{"run_id":"run_1","epoch":2}')
    (letter,) = dead_letters.receive(10)
    assert letter.body == '{"run_id":"run_1","epoch":2}'
    assert letter.receive_count >= 1
    dead_letters.delete(letter.receipt_handle)
    assert dead_letters.receive(10) == []


def test_sending_without_a_queue_url_names_the_setting(aws: Backend):
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415

    ports = aws_ports(SETTINGS.with_(resume_queue_url=""), aws.extra["session"])
    with pytest.raises(ConfigurationError, match="DL_RESUME_QUEUE_URL"):
        ports.queue.send(ResumeMessage("run_1", 0))
    assert ports.dead_letters is None


def test_creating_resources_twice_keeps_the_same_queues(aws: Backend):
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

    again = ensure_resources(SETTINGS, aws.extra["session"])
    assert (again.resume_queue_url, again.dlq_url) == (
        aws.settings.resume_queue_url,
        aws.settings.dlq_url,
    )
    sqs = aws.extra["session"].client("sqs")
    redrive = sqs.get_queue_attributes(
        QueueUrl=again.resume_queue_url, AttributeNames=["RedrivePolicy"]
    )
    dlq_arn = sqs.get_queue_attributes(QueueUrl=again.dlq_url, AttributeNames=["QueueArn"])
    policy = json.loads(redrive["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq_arn["Attributes"]["QueueArn"]


def _ignore_tag(*_: Any) -> None:
    return None


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !Sub...) as plain values."""


_CfnLoader.add_multi_constructor("!", _ignore_tag)


def test_the_local_table_has_the_keys_and_indexes_of_the_template(aws: Backend):
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    declared = template["Resources"]["RunsTable"]["Properties"]
    client = aws.store.client  # type: ignore[attr-defined]
    table = client.describe_table(TableName=aws.settings.table_name)["Table"]

    def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    assert keys(table["KeySchema"]) == keys(declared["KeySchema"])
    assert sorted(
        (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
    ) == sorted((a["AttributeName"], a["AttributeType"]) for a in declared["AttributeDefinitions"])
    assert {i["IndexName"]: keys(i["KeySchema"]) for i in table["GlobalSecondaryIndexes"]} == {
        i["IndexName"]: keys(i["KeySchema"]) for i in declared["GlobalSecondaryIndexes"]
    }
    assert declared["TimeToLiveSpecification"]["AttributeName"] == items.TTL_ATTRIBUTE


def _key_attributes(query: dict[str, Any]) -> tuple[str, ...]:
    """The attributes a Query's key condition names, in order (aliases resolved)."""
    names = query.get("ExpressionAttributeNames", {})
    found = re.findall(
        r"([#\w]+) (?:=|<=?|>=?|BETWEEN)|begins_with\(([#\w]+)", query["KeyConditionExpression"]
    )
    return tuple(names.get(name, name) for name in (a or b for a, b in found))


def test_the_indexes_the_code_queries_are_exactly_those_the_template_declares(aws: Backend):
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    declared = {
        index["IndexName"]: index
        for index in template["Resources"]["RunsTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    queried: dict[str, set[tuple[str, ...]]] = {}

    def record(params: dict[str, Any], **_: Any) -> None:
        if "IndexName" in params:
            queried.setdefault(params["IndexName"], set()).add(_key_attributes(params))

    client = aws.store.client  # type: ignore[attr-defined]
    client.meta.events.register("provide-client-params.dynamodb.Query", record)
    # Every read of an index the stores make: listing, recovery, parked queues.
    aws.store.list_runs(RunQuery(task_id="orders"))
    aws.store.list_runs(RunQuery(task_id="orders", status=RunStatus.QUEUED))
    aws.store.list_runs(RunQuery(status=RunStatus.QUEUED))
    aws.store.expired_leases(at(100))
    aws.store.stranded_runs(at(100))
    assert aws.flow is not None
    aws.flow.keys_with_waiters()

    assert set(queried) == set(declared)
    for name, uses in queried.items():
        hash_key, range_key = (k["AttributeName"] for k in declared[name]["KeySchema"])
        for attributes in uses:
            assert attributes in {(hash_key,), (hash_key, range_key)}, (name, attributes)
    keys_only = {n for n, i in declared.items() if i["Projection"]["ProjectionType"] == "KEYS_ONLY"}
    # The stores read the run itself after a keys-only index: they must know which those are.
    assert keys_only == items.KEYS_ONLY_INDEXES


def test_endpoint_variables_point_each_client_at_its_endpoint(monkeypatch: pytest.MonkeyPatch):
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5000")
    ports = aws_ports(SETTINGS)
    assert ports.store.client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert ports.blobs.client.meta.endpoint_url == "http://127.0.0.1:4566"
