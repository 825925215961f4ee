"""Tasks the CLI tests load with ``--tasks-module cli_tasks`` (ids prefixed ``cli-``)."""

from __future__ import annotations

from pydantic import BaseModel

from durable_lambda import Queue, step, task, wait


class Greeting(BaseModel):
    name: str


@step(name="shout")
def shout(name: str) -> str:
    return name.upper()


@task(id="cli-greet", queue=Queue("cli-greetings", concurrency_limit=3))
async def greet(payload: Greeting) -> str:
    loud = await shout(payload.name)
    return f"hello {loud}"


@task(id="cli-slow")
async def slow(payload: Greeting) -> str:
    loud = await shout(payload.name)
    await wait.for_(hours=1)
    return loud
