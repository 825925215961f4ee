"""What a fenced write's refusal means on DynamoDB: a lost lease, or a requested cancel. No I/O.

Every write of an invocation is conditioned on the run's ``lease_owner`` and
``epoch``, and (except the checkpoint that ends the run CANCELED) on no
cancel waiting for it. The old item a refused condition returns tells which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.errors import CancelRequestedError, LeaseLostError

if TYPE_CHECKING:
    from durable_lambda.adapters.aws.dynamodb.expressions import Update
    from durable_lambda.adapters.aws.dynamodb.layout import Item
    from durable_lambda.engine.records import Fence


def not_requested(update: Update) -> str:
    """The condition that no cancel waits for the run's holder."""
    return f"attribute_not_exists({update.name(items.CANCEL_REQUESTED)})"


def lease_lost(run_id: str, fence: Fence, owner: str | None, epoch: int) -> LeaseLostError:
    """The error of a write whose fence no longer holds."""
    return LeaseLostError(
        f"run {run_id} is held by {owner!r} at epoch {epoch}, "
        f"not {fence.owner!r} at epoch {fence.epoch}"
    )


def refusal(run_id: str, fence: Fence, old: Item) -> Exception:
    """The error of a fenced write refused by the META item ``old``: cancel, or lost lease."""
    owner, epoch = items.get_s(old, "lease_owner"), items.get_n(old, "epoch")
    if owner == fence.owner and epoch == fence.epoch and items.CANCEL_REQUESTED in old:
        return CancelRequestedError(f"run {run_id}: a cancel was requested")
    return lease_lost(run_id, fence, owner, epoch)
