"""Identifiers: time-ordered run ids and unique invocation owners."""

from __future__ import annotations

import os
import time


def new_run_id() -> str:
    """A run id that sorts by creation time: ``run_`` + 12 hex of ms + 16 random hex."""
    return f"run_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


def new_owner(request_id: str) -> str:
    """An owner id for one invocation: the Lambda request id plus randomness.

    Lambda retries reuse request ids, so the suffix keeps two attempts apart.
    """
    return f"{request_id}:{os.urandom(4).hex()}"
