"""Create the table, bucket and queues a stack needs, for moto and local development only.

Deployed stacks get them from ``template.yaml``; production code never calls this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.ports import CLIENT_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import GlobalSecondaryIndexTypeDef
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

    from durable_lambda.settings import Settings

#: Deliveries of a resume message before SQS moves it to the DLQ (template.yaml's default).
MAX_RECEIVE_COUNT = 5


def ensure_resources(settings: Settings, session: boto3.session.Session | None = None) -> Settings:
    """Create the table, bucket and queues when missing (moto and local development only).

    Deployed stacks get them from ``template.yaml``. Queues are named after the
    table (``<table>-resume``, ``<table>-dlq``) unless their URLs are set.

    Returns:
        ``settings`` with the queue URLs filled in.
    """
    session = session or boto3.session.Session()
    _ensure_table(session.client("dynamodb", config=CLIENT_CONFIG), settings.table_name)
    _ensure_bucket(session.client("s3", config=CLIENT_CONFIG), settings.bucket_name)
    sqs: SQSClient = session.client("sqs", config=CLIENT_CONFIG)
    dlq_url = (
        settings.dlq_url or sqs.create_queue(QueueName=f"{settings.table_name}-dlq")["QueueUrl"]
    )
    resume_url = settings.resume_queue_url
    if not resume_url:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}'
        resume_url = sqs.create_queue(
            QueueName=f"{settings.table_name}-resume",
            Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "900"},
        )["QueueUrl"]
    return settings.with_(resume_queue_url=resume_url, dlq_url=dlq_url)


def _ensure_table(client: DynamoDBClient, name: str) -> None:
    try:
        client.describe_table(TableName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    else:
        return
    indexes: list[GlobalSecondaryIndexTypeDef] = [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {
                "ProjectionType": "KEYS_ONLY" if index in items.KEYS_ONLY_INDEXES else "ALL"
            },
        }
        for index, (hash_key, range_key) in items.INDEX_KEYS.items()
    ]
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"} for attribute in items.KEY_ATTRIBUTES
        ],
        KeySchema=[
            {"AttributeName": items.TABLE_KEYS[0], "KeyType": "HASH"},
            {"AttributeName": items.TABLE_KEYS[1], "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=indexes,
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": items.TTL_ATTRIBUTE, "Enabled": True},
    )


def _ensure_bucket(client: S3Client, name: str) -> None:
    try:
        client.head_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            raise
    else:
        return
    region = client.meta.region_name
    if region in {None, "us-east-1"}:
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
