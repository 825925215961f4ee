"""Tasks of the wait token tests on the emulated stack (the workers import this module)."""

from __future__ import annotations

from typing import Any

from durable_lambda import step, task, wait


@step
def after_token(data: Any) -> Any:
    return data


@task(id="token-approval")
async def token_approval(payload: dict[str, Any]) -> Any:
    token = await wait.create_token(timeout=payload["timeout"], name="approval")
    return await after_token(await wait.for_token(token))
