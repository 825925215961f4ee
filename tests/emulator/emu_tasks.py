"""A durable task for the emulated-stack smoke test: a step, a suspending wait, a step."""

from __future__ import annotations

import os

from durable_lambda import TaskContext, step, task, wait


@step
def where(label: str) -> dict[str, object]:
    return {"label": label, "pid": os.getpid()}


@task(id="emu-hello")
async def emu_hello(payload: dict[str, str], ctx: TaskContext) -> dict[str, object]:
    before = await where("before")
    await wait.for_(seconds=2)  # above the short-wait threshold: the invocation suspends
    after = await where("after")
    return {"name": payload["name"], "before": before, "after": after}
