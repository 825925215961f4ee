"""Powertools wiring: one structured logger and its standard keys.

Logs carry run ids, task ids, statuses and counts, never payloads or outputs.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

SERVICE = "durable-lambda"

logger = Logger(service=SERVICE)
