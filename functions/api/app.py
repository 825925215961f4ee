"""API Lambda: API Gateway (REST) requests in, triggers, run reads and queue control out."""

from durable_lambda.api import handler, warm

# Cold start: import task modules, build AWS clients and publish the catalog during init.
warm()

__all__ = ["handler"]
