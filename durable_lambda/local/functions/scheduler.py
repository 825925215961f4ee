"""The scheduler function: fire due timers, recover stranded runs, start cron tasks."""

import os

from durable_lambda.lambda_entry import scheduler_handler as handler
from durable_lambda.lambda_entry import warm

# Cold start: import task modules and build clients during init, not in the first invocation.
# Only inside a function environment: importing this module elsewhere has no effect.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    warm()

__all__ = ["handler"]
