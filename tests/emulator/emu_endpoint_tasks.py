"""A task whose step result is stored in S3 (above a small inline limit) after an SQS hop."""

from __future__ import annotations

from durable_lambda import step, task, wait


@step
def big(size: int) -> str:
    return "x" * size


@task(id="emu-big")
async def emu_big(payload: dict[str, int]) -> int:
    value = await big(payload["size"])
    await wait.for_(seconds=2)  # a suspension: the run comes back through the resume queue
    return len(value)
