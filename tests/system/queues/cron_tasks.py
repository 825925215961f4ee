"""The cron task of the cron test, in a module of its own.

Only the cron test's stack imports it: a ``* * * * *`` task in ``queue_tasks``
would be fired every minute by the scheduler of every other test's stack.
"""

from __future__ import annotations

from ledger import append

from durable_lambda import step, task
from durable_lambda.cron import ScheduledPayload


@step
def tick(occurrence: str) -> str:
    """One ledger execution per fired occurrence (``key`` is the occurrence)."""
    append("start", key=occurrence)
    append("end", key=occurrence)
    return occurrence


@task(id="q-cron", cron="* * * * *")
async def every_minute(payload: ScheduledPayload) -> str:
    """Fired by the scheduler once per minute."""
    return await tick(payload.timestamp.isoformat())
