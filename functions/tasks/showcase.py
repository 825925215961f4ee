"""Sample tasks that finish in seconds on the dev stack (``make demo`` runs each once).

- ``checkout``: an order with a manager's approval token and a flaky payment gateway.
- ``import-chunks``: a loop of chunks longer than one Lambda invocation (it chains).
- ``index-documents``: a fan-out with ``ctx.map``, each document a child run on the
  ``documents`` queue, at most 5 at once.
- ``publish-digest``: a parent waiting on a batch of child runs.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from pydantic import BaseModel, Field

from durable_lambda import Queue, RetryPolicy, TaskContext, step, task, wait

# The gateway declines the first charge of each order in each execution environment
# (a cold connection): the retry through SQS then lands on a warm one and succeeds.
_declined: Counter[str] = Counter()


class CheckoutIn(BaseModel):
    order_id: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)


class Approval(BaseModel):
    approved: bool
    by: str


@step
def hold_stock(order_id: str) -> str:
    return f"hold-{order_id}"


@step(retry=RetryPolicy(max_attempts=5, factor=2.0, min_timeout=1, max_timeout=4))
def charge(order_id: str, amount_cents: int, idempotency_key: str) -> dict[str, str | int]:
    _declined[order_id] += 1
    if _declined[order_id] == 1:
        raise ConnectionError("payment gateway: connection reset (first call)")
    charge_id = f"ch_{idempotency_key.split(':', maxsplit=1)[0][-10:]}"
    return {"charge_id": charge_id, "amount_cents": amount_cents}


@task(id="checkout", queue=Queue("orders", concurrency_limit=10))
async def checkout(payload: CheckoutIn, ctx: TaskContext) -> dict[str, str | int]:
    await hold_stock(payload.order_id)
    token = await wait.create_token(timeout=timedelta(hours=1), name="approval")
    approval = await wait.for_token(token, result_type=Approval)
    if not approval.approved:
        return {"status": "rejected", "by": approval.by}
    receipt = await charge(payload.order_id, payload.amount_cents, f"{ctx.run_id}:charge")
    return {"status": "paid", "approved_by": approval.by, **receipt}


@step
def import_chunk(index: int, seconds: float) -> int:
    time.sleep(seconds)  # stands in for real work: a page of an export, a batch of rows
    return index * 100


@task(id="import-chunks")
async def import_chunks(payload: dict[str, float], ctx: TaskContext) -> dict[str, int]:
    rows = 0
    for index in range(int(payload["chunks"])):
        rows += await import_chunk(index, payload.get("seconds", 0.5))
    return {"chunks": int(payload["chunks"]), "rows": rows}


@step
def extract_text(document: str) -> int:
    return len(document) * 7  # "words"


@task(id="extract-document", queue=Queue("documents", concurrency_limit=5))
async def extract_document(payload: dict[str, str], ctx: TaskContext) -> dict[str, int | str]:
    return {"document": payload["document"], "words": await extract_text(payload["document"])}


@task(id="index-documents")
async def index_documents(payload: dict[str, list[str]], ctx: TaskContext) -> dict[str, int]:
    async def one(ctx: TaskContext, document: str, index: int) -> int:
        result = await extract_document.trigger_and_wait(
            {"document": document}, name=f"extract-{index}"
        )
        return int(result.unwrap()["words"])

    batch = await ctx.map(payload["documents"], one, name="extract")
    words = [w for w in batch.results() if w is not None]
    return {"documents": len(words), "words": sum(words)}


@step
def render(section: str) -> str:
    return f"<h2>{section}</h2>"


@task(id="render-section")
async def render_section(payload: dict[str, str], ctx: TaskContext) -> str:
    return await render(payload["section"])


@task(id="publish-digest")
async def publish_digest(payload: dict[str, list[str]], ctx: TaskContext) -> dict[str, int]:
    sections = await render_section.batch_trigger_and_wait(
        [{"section": s} for s in payload["sections"]]
    )
    html = "".join(str(r.unwrap()) for r in sections)
    return {"sections": len(sections), "bytes": len(html)}
