"""The fault injector of the test support: what it applies, what the caller sees."""

from __future__ import annotations

import pytest
from contract_backends import Backend
from faults import Fault

from durable_lambda.adapters.aws.dynamodb import layout as items


def test_an_applied_then_timed_out_put_is_applied_once_and_retried(aws: Backend):
    assert aws.faults is not None
    assert aws.counter is not None
    client = aws.store.client  # type: ignore[attr-defined]
    table = aws.settings.table_name
    item = items.key("PROBE#1", "X")
    aws.faults.inject("PutItem", Fault.APPLIED_THEN_TIMEOUT)
    aws.counter.reset()
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as raised:
        client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    # The first attempt wrote the item; botocore's retry then met its own write.
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert aws.counter.sends["dynamodb.PutItem"] == 2
    assert client.get_item(TableName=table, Key=item).get("Item") == item


@pytest.mark.parametrize("kind", [Fault.THROTTLE, Fault.SERVER_ERROR])
def test_a_throttled_or_failed_attempt_is_not_applied_and_the_retry_is(aws: Backend, kind: Fault):
    assert aws.faults is not None
    assert aws.counter is not None
    client = aws.store.client  # type: ignore[attr-defined]
    table = aws.settings.table_name
    item = items.key("PROBE#2", "X")
    aws.faults.inject("PutItem", kind)
    aws.counter.reset()
    response = client.put_item(
        TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
    )
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert aws.faults.count("PutItem", kind) == 1


def test_a_throttle_on_every_attempt_reaches_the_caller(aws: Backend):
    assert aws.faults is not None
    client = aws.store.client  # type: ignore[attr-defined]
    aws.faults.inject("GetItem", Fault.THROTTLE, attempts=99)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.get_item(TableName=aws.settings.table_name, Key=items.key("PROBE#3", "X"))
