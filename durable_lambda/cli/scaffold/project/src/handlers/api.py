"""API function: API Gateway requests in; triggers, run reads and queue control out."""

from durable_lambda.api import handler, warm

warm()  # cold start: import the tasks, build clients, publish the task catalog

__all__ = ["handler"]
