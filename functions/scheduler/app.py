"""Scheduler Lambda: every minute, fire due timers and recover runs whose worker died."""

from durable_lambda.lambda_entry import scheduler_handler as handler
from durable_lambda.lambda_entry import warm

# Cold start: import task modules and build AWS clients during init, not in the first invocation.
warm()

__all__ = ["handler"]
