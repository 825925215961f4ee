"""Reaper function: deletes the journal and timeline of each run whose record TTL removed."""

from durable_lambda.lambda_entry import reaper_handler as handler

__all__ = ["handler"]
