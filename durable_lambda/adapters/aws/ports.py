"""Wiring to AWS: build the ports from settings.

Endpoints come from boto3's own configuration, so ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` point any port at moto or LocalStack.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from durable_lambda.adapters.aws.dynamodb.catalog import DynamoDBCatalogStore
from durable_lambda.adapters.aws.dynamodb.flow import DynamoDBFlowStore
from durable_lambda.adapters.aws.dynamodb.runs import DynamoDBRunStore
from durable_lambda.adapters.aws.dynamodb.tokens import DynamoDBTokenStore
from durable_lambda.adapters.aws.s3 import S3BlobStore
from durable_lambda.adapters.aws.sqs import SQSDeadLetters, SQSResumeQueue
from durable_lambda.clock import SystemClock
from durable_lambda.ports import Ports
from durable_lambda.settings import Settings
from durable_lambda.values import ValueStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

#: Retries with backoff for throttling and 5xx; short timeouts so a slow call
#: cannot eat the Lambda deadline.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    tcp_keepalive=True,
)


@dataclass(frozen=True, slots=True)
class AwsPorts(Ports):
    """The ports on AWS (DynamoDB, SQS, S3), typed as their adapters.

    Attributes:
        store: Runs, journals, timelines and timers (DynamoDB).
        flow: Concurrency counters, parked runs, rate windows and cron cursors (DynamoDB).
        queue: The resume queue (SQS).
        blobs: Large values (S3).
        clock: The system clock.
        dead_letters: The resume queue's DLQ, when configured.
        tokens: Wait tokens (DynamoDB, the same table).
        catalog: The task catalog (DynamoDB).
    """

    store: DynamoDBRunStore
    flow: DynamoDBFlowStore
    queue: SQSResumeQueue
    blobs: S3BlobStore
    clock: SystemClock
    dead_letters: SQSDeadLetters | None = None
    tokens: DynamoDBTokenStore | None = None
    catalog: DynamoDBCatalogStore | None = None


def reaper_client(session: boto3.session.Session | None = None) -> DynamoDBClient:
    """The DynamoDB client of the reaper function (the only port it needs)."""
    return (session or boto3.session.Session()).client("dynamodb", config=CLIENT_CONFIG)


def aws_ports(settings: Settings, session: boto3.session.Session | None = None) -> AwsPorts:
    """Build the ports from ``settings`` (clients from ``session``, default: a new one)."""
    session = session or boto3.session.Session()
    dynamodb: DynamoDBClient = session.client("dynamodb", config=CLIENT_CONFIG)
    s3: S3Client = session.client("s3", config=CLIENT_CONFIG)
    sqs: SQSClient = session.client("sqs", config=CLIENT_CONFIG)
    blobs = S3BlobStore(s3, settings.bucket_name)
    values = ValueStore(blobs, settings.inline_limit, settings.max_value_bytes)
    retention = dt.timedelta(days=settings.retention_days)
    store = DynamoDBRunStore(dynamodb, settings.table_name, values, retention=retention)
    return AwsPorts(
        store=store,
        blobs=blobs,
        queue=SQSResumeQueue(sqs, settings.resume_queue_url),
        clock=SystemClock(),
        flow=DynamoDBFlowStore(dynamodb, settings.table_name),
        dead_letters=SQSDeadLetters(sqs, settings.dlq_url) if settings.dlq_url else None,
        tokens=DynamoDBTokenStore(dynamodb, settings.table_name, values, retention=retention),
        catalog=DynamoDBCatalogStore(dynamodb, settings.table_name),
    )
