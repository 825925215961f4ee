"""A task the CLI token tests load with ``DL_TASK_MODULES=cli_token_tasks``: waits for approval."""

from __future__ import annotations

from typing import Any

from durable_lambda import task, wait
from durable_lambda.errors import TokenFailedError


@task(id="cli-approve")
async def approve(payload: None) -> Any:
    token = await wait.create_token(name="approval", timeout=3600)
    try:
        return {"data": await wait.for_token(token)}
    except TokenFailedError as exc:
        return {"failed": [exc.error_type, exc.message]}
