"""An order flow: validation, stock, a manager's approval, a flaky gateway retried, and a wait."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from pydantic import BaseModel, Field

from durable_lambda import Queue, RetryPolicy, TaskContext, step, task, wait

# The sandbox gateway declines the first two calls per order, like a flaky API.
_gateway_calls: Counter[str] = Counter()


class OrderIn(BaseModel):
    order_id: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)
    email: str


class Approval(BaseModel):
    approved: bool
    by: str


class Receipt(BaseModel):
    order_id: str
    charge_id: str
    amount_cents: int


@step
def reserve_stock(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "reservation": f"res-{order_id}"}


@step(retry=RetryPolicy(max_attempts=4, factor=2.0, min_timeout=1, max_timeout=30, randomize=False))
def charge_card(order_id: str, amount_cents: int, idempotency_key: str) -> Receipt:
    _gateway_calls[order_id] += 1
    if _gateway_calls[order_id] <= 2:
        raise ConnectionError(f"payment gateway timeout (call {_gateway_calls[order_id]})")
    return Receipt(
        order_id=order_id, charge_id=f"ch_{idempotency_key[-12:]}", amount_cents=amount_cents
    )


@step
async def send_receipt(email: str, receipt: Receipt) -> str:
    return f"receipt {receipt.charge_id} sent to {email}"


@task(
    id="process-order",
    retry=RetryPolicy(max_attempts=3),
    queue=Queue("orders", concurrency_limit=10),
)
async def process_order(payload: OrderIn, ctx: TaskContext) -> dict[str, str]:
    await reserve_stock(payload.order_id)
    # A person approves the order (tokens.complete, or the demo): no Lambda runs meanwhile.
    token = await wait.create_token(timeout=timedelta(days=2), name="approval")
    approval = await wait.for_token(token, result_type=Approval)
    if not approval.approved:
        return {"status": "rejected", "by": approval.by}
    receipt = await charge_card(payload.order_id, payload.amount_cents, f"{ctx.run_id}:charge")
    await wait.for_(hours=1)  # cooling-off period before the receipt
    message = await send_receipt(payload.email, receipt)
    return {"status": "completed", "charge_id": receipt.charge_id, "message": message}
