"""Long-running work: a loop that outlives one Lambda invocation, and a long wait."""

from __future__ import annotations

import time

from durable_lambda import TaskContext, step, task, wait


@step
def render_page(page: int) -> int:
    time.sleep(0.1)  # stands in for real work: an API call, a PDF page
    return page * 10


@task(id="render-report")
async def render_report(payload: dict[str, int], ctx: TaskContext) -> dict[str, int]:
    total = 0
    for page in range(payload["pages"]):
        total += await render_page(page)
    return {"pages": payload["pages"], "total": total}


@step
def snapshot_metrics(day: str) -> dict[str, str]:
    return {"day": day, "rows": "1234"}


@task(id="nightly-digest")
async def nightly_digest(payload: dict[str, str], ctx: TaskContext) -> dict[str, str]:
    metrics = await snapshot_metrics(payload["day"])
    await wait.for_(hours=2)  # beyond SQS's 15-minute delay: goes through the timer index
    return {"day": metrics["day"], "rows": metrics["rows"], "sent": "yes"}
