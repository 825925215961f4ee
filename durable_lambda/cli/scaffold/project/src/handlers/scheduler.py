"""Scheduler function: every minute, fire due timers and recover stranded runs."""

from durable_lambda.lambda_entry import scheduler_handler as handler
from durable_lambda.lambda_entry import warm

warm()  # cold start: import the tasks and build clients outside the first invocation

__all__ = ["handler"]
