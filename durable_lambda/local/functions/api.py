"""The API function: API Gateway proxy events in, triggers and reads out."""

from durable_lambda.api import handler, warm

# Cold start: import task modules, build clients and publish the catalog during init.
warm()

__all__ = ["handler"]
