"""The embedded dev stack: Lambda and its SQS event source emulated on this machine, on moto.

May import everything in the package; nothing in the package imports it (production never
provisions or emulates). boto3 and moto load only once a stack or server starts.

Handlers run in subprocess execution environments with Lambda's cold and
warm starts, real deadlines, SIGKILL at timeout and reserved concurrency; a
moto server stands in for DynamoDB, S3 and SQS. No Docker, no AWS account.
"""

from durable_lambda.local.lambda_context import LambdaContext
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.process_pool import (
    Chaos,
    FunctionConfig,
    FunctionPool,
    InvocationResult,
    PoolClosedError,
    PoolStats,
)
from durable_lambda.local.scheduler_ticker import SchedulerTicker
from durable_lambda.local.sqs_poller import SqsPoller
from durable_lambda.local.stack import EmulatedStack

__all__ = [
    "Chaos",
    "EmulatedStack",
    "FunctionConfig",
    "FunctionPool",
    "InvocationResult",
    "LambdaContext",
    "MotoServer",
    "PoolClosedError",
    "PoolStats",
    "SchedulerTicker",
    "SqsPoller",
]
