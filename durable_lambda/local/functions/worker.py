"""The worker function: SQS resume messages in, durable invocations out."""

from durable_lambda.lambda_entry import warm
from durable_lambda.lambda_entry import worker_handler as handler

# Cold start: import task modules and build clients during init, not in the first invocation.
warm()

__all__ = ["handler"]
