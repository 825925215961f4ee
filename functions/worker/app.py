"""Worker Lambda: SQS resume messages in, durable invocations out."""

from durable_lambda.lambda_entry import worker_handler as handler

__all__ = ["handler"]
