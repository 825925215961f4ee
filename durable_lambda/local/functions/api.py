"""The API function: API Gateway proxy events in, triggers and reads out."""

import os

from durable_lambda.api import handler, warm

# Cold start: import task modules, build clients and publish the catalog during init.
# Only inside a function environment: importing this module elsewhere has no effect.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    warm()

__all__ = ["handler"]
