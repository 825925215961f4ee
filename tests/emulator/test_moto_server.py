"""The local moto server: DynamoDB transactions whose cost does not grow with the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import MotoServer

pytestmark = [pytest.mark.emulator, pytest.mark.moto]

TABLE = "transactions"
#: Items already in the table: a whole-table copy would copy each of them.
FILLER = 200


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def ddb(moto: MotoServer) -> Any:
    moto.reset()
    client = EndpointSession(moto.endpoint_url, moto.region).client("dynamodb")
    _create_table(client)
    return client


def _create_table(client: Any, **extra: Any) -> dict[str, Any]:
    """The test table (pk, sk), with ``extra`` CreateTable parameters; its description."""
    response = client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return dict(response["TableDescription"])


def _key(pk: str, sk: str = "META") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _put(ddb: Any, pk: str, value: int, sk: str = "META") -> None:
    ddb.put_item(TableName=TABLE, Item={**_key(pk, sk), "v": {"N": str(value)}})


def _value(ddb: Any, pk: str, sk: str = "META") -> int | None:
    item = ddb.get_item(TableName=TABLE, Key=_key(pk, sk), ConsistentRead=True).get("Item")
    return None if item is None else int(item["v"]["N"])


def _update(pk: str, value: int, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": _key(pk),
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": str(value)}},
    }
    if condition is not None:
        update["ConditionExpression"] = condition
    return {"Update": update}


def test_a_transaction_copies_only_the_items_it_names(ddb, monkeypatch):
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415 - moto's own class

    for i in range(FILLER):
        _put(ddb, f"filler-{i}", i)
    _put(ddb, "a", 1)
    copies: list[object] = []
    original = Item.__deepcopy__

    def counted(self: Any, memo: Any) -> Any:
        copies.append(self)
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)
    ddb.transact_write_items(
        TransactItems=[
            _update("a", 2),
            {"Put": {"TableName": TABLE, "Item": {**_key("b"), "v": {"N": "3"}}}},
        ]
    )
    assert (_value(ddb, "a"), _value(ddb, "b")) == (2, 3)
    # moto backs up every table a transaction names; a rollback needs only
    # the items it names (2 here), whatever the table holds.
    assert len(copies) <= 2, f"{len(copies)} items copied for a transaction of 2"


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(ddb):
    _put(ddb, "a", 1)
    _put(ddb, "gone", 5)
    _put(ddb, "guard", 0)
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                _update("a", 2),  # applied, then rolled back
                {"Put": {"TableName": TABLE, "Item": {**_key("new"), "v": {"N": "7"}}}},
                {"Delete": {"TableName": TABLE, "Key": _key("gone")}},
                _update("guard", 9, condition="v = :v"),  # fails: v is 0, not 9
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert (_value(ddb, "a"), _value(ddb, "new"), _value(ddb, "gone"), _value(ddb, "guard")) == (
        1,
        None,
        5,
        0,
    )


def test_a_committed_transaction_applies_every_write(ddb):
    _put(ddb, "a", 1)
    _put(ddb, "gone", 5)
    ddb.transact_write_items(
        TransactItems=[
            _update("a", 2, condition="attribute_exists(pk)"),
            {"Put": {"TableName": TABLE, "Item": {**_key("new"), "v": {"N": "7"}}}},
            {"Delete": {"TableName": TABLE, "Key": _key("gone")}},
        ]
    )
    assert (_value(ddb, "a"), _value(ddb, "new"), _value(ddb, "gone")) == (2, 7, None)


def test_a_transaction_naming_one_item_twice_is_refused_and_changes_nothing(ddb):
    _put(ddb, "a", 1)
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[_update("a", 2), _update("a", 3)])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _value(ddb, "a") == 1


def test_a_cancelled_transaction_leaves_no_record_on_the_tables_stream(moto: MotoServer):
    moto.reset()
    session = EndpointSession(moto.endpoint_url, moto.region)
    ddb = session.client("dynamodb")
    arn = _create_table(
        ddb,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["LatestStreamArn"]
    _put(ddb, "guard", 0)
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**_key("new"), "v": {"N": "7"}}}},
                _update("guard", 9, condition="v = :v"),
            ]
        )
    streams = session.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    # The guard's put only: the cancelled transaction's put was rolled back, record and all.
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["guard"]
