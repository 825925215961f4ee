"""The scheduler function: fire due timers, recover stranded runs, start cron tasks."""

from durable_lambda.lambda_entry import scheduler_handler as handler
from durable_lambda.lambda_entry import warm

# Cold start: import task modules and build clients during init, not in the first invocation.
warm()

__all__ = ["handler"]
