"""The approval flow of the emulated-stack token test: a task hands out a callback URL and waits.

``EMU_INBOX`` names a folder standing in for the webhook provider: the step
"registers" the callback URL by writing it there, as a real task would post it
to Stripe, GitHub or a person's inbox.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from durable_lambda import RetryPolicy, step, task, wait


@step
def register_webhook(order_id: str, callback_url: str | None) -> str:
    inbox = Path(os.environ["EMU_INBOX"])
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f"{order_id}.url").write_text(callback_url or "")
    return order_id


@task(id="emu-approval", retry=RetryPolicy(max_attempts=1))
async def emu_approval(payload: dict[str, Any]) -> dict[str, Any]:
    token = await wait.create_token(name="approval", timeout=payload["timeout"])
    await register_webhook(payload["order_id"], token.callback_url)
    decision = await wait.for_token(token)  # a TokenTimeoutError fails the run
    return {"order_id": payload["order_id"], "decision": decision}
