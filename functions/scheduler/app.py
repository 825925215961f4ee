"""Scheduler Lambda: every minute, fire due timers and recover runs whose worker died."""

from durable_lambda.lambda_entry import scheduler_handler as handler

__all__ = ["handler"]
