"""An example task: two journaled steps and a wait. Replace it with your own."""

from __future__ import annotations

from pydantic import BaseModel

from durable_lambda import RetryPolicy, TaskContext, step, task, wait


class GreetIn(BaseModel):
    """The payload: validated on trigger and on every resume."""

    name: str


@step(retry=RetryPolicy(max_attempts=3))
def compose(name: str) -> str:
    """Build the message (recorded once; a resume reads it back instead of running it)."""
    return f"Hello, {name}!"


@step
def deliver(message: str, idempotency_key: str) -> dict[str, str]:
    """Send it: call your email or webhook API here with the key, so a retry is deduplicated."""
    return {"message": message, "delivery": idempotency_key}


@task(id="greet")
async def greet(payload: GreetIn, ctx: TaskContext) -> dict[str, str]:
    """Compose, wait a little (the Lambda exits; SQS brings the run back), deliver."""
    message = await compose(payload.name)
    await wait.for_(seconds=5)
    return await deliver(message, f"{ctx.run_id}:deliver")
