"""Lease and deadline maths: how long an invocation may hold a run. Pure."""

from __future__ import annotations

import datetime as dt

#: Added to the Lambda deadline so a lease never expires under a live holder
#: whose clock runs slightly behind the store's.
LEASE_GRACE = dt.timedelta(seconds=5)


def lease_expiry(now: dt.datetime, remaining_seconds: float) -> dt.datetime:
    """When a lease taken at ``now`` by an invocation with ``remaining_seconds`` left expires.

    Lambda kills the invocation at its deadline, so after the deadline plus a
    grace the holder is certainly gone and another invocation may take over.
    """
    return now + dt.timedelta(seconds=max(0.0, remaining_seconds)) + LEASE_GRACE


def safety_margin(timeout_seconds: float, minimum: float = 10.0, fraction: float = 0.1) -> float:
    """Seconds before the deadline at which no new step may start.

    ``max(minimum, fraction * timeout)``, but never more than half the timeout,
    so short timeouts (tests, small functions) still get work done.
    """
    return min(max(minimum, fraction * timeout_seconds), timeout_seconds / 2)


def must_suspend(
    remaining_seconds: float, margin_seconds: float, expected_seconds: float = 0.0
) -> bool:
    """Whether a new step of ``expected_seconds`` would cut into the safety margin."""
    return remaining_seconds - expected_seconds < margin_seconds
