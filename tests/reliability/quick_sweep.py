"""The scheduler function, with its sweep for lost resume messages scaled to the tests' clock.

In production the sweep re-sends the message of a run overdue by
``STRANDED_AFTER`` (minutes, for a scheduler ticking every minute). The chaos
test runs 3 s invocations and a 1 s tick, so it scales that down the same
way; everything else is the real handler (``functions/scheduler/app.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from durable_lambda import lambda_entry

#: Comfortably above a message's longest honest delay in the chaos test
#: (visibility timeout 6 s, lease expiry about 8 s after it was taken).
STRANDED_AFTER = dt.timedelta(seconds=15)

lambda_entry.warm()
lambda_entry._build().scheduler.stranded_after = STRANDED_AFTER


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return lambda_entry.scheduler_handler(event, context)
