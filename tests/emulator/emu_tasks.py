"""A durable task for the emulated-stack smoke test: a step, a suspending wait, a step."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from durable_lambda import RetryPolicy, TaskContext, step, task, wait


@step
def where(label: str) -> dict[str, object]:
    return {"label": label, "pid": os.getpid()}


@task(id="emu-hello")
async def emu_hello(payload: dict[str, str], ctx: TaskContext) -> dict[str, object]:
    before = await where("before")
    await wait.for_(seconds=2)  # above the short-wait threshold: the invocation suspends
    after = await where("after")
    return {"name": payload["name"], "before": before, "after": after}


@step(retry=RetryPolicy(max_attempts=3, min_timeout=0.1, randomize=False))
def fails_once(marker: str) -> str:
    """Fails the first time a marker is seen (a file outlives the worker process), then passes."""
    path = Path(tempfile.gettempdir()) / f"emu-fails-once-{marker}"
    if not path.exists():
        path.touch()
        raise ConnectionError("first attempt fails")
    return marker


@step(retry=RetryPolicy(max_attempts=1))
def always_fails() -> None:
    raise ValueError("this step never works")


@task(id="emu-flaky")
async def emu_flaky(payload: dict[str, str]) -> str:
    return await fails_once(payload["marker"])


@task(id="emu-broken", retry=RetryPolicy(max_attempts=1))
async def emu_broken(payload: dict[str, str]) -> None:
    await always_fails()
