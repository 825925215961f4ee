"""The worker function: SQS resume messages in, durable invocations out."""

import os

from durable_lambda.lambda_entry import warm
from durable_lambda.lambda_entry import worker_handler as handler

# Cold start: import task modules and build clients during init, not in the first invocation.
# Only inside a function environment: importing this module elsewhere has no effect.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    warm()

__all__ = ["handler"]
