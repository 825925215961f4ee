"""Worker function: SQS resume messages in, durable invocations out."""

from durable_lambda.lambda_entry import warm
from durable_lambda.lambda_entry import worker_handler as handler

warm()  # cold start: import the tasks and build clients outside the first invocation

__all__ = ["handler"]
