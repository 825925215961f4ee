"""``tokens``: complete, fail, heartbeat and read wait tokens from any Python process.

A task creates a token with ``wait.create_token`` and waits with
``wait.for_token``; whoever holds the token's id completes it from outside::

    from durable_lambda import tokens

    tokens.complete(token_id, {"approved": True})  # the waiting run wakes at once
    tokens.fail(token_id, "Rejected", "the reviewer said no")
    tokens.heartbeat(token_id)  # moves its heartbeat deadline
    tokens.retrieve(token_id).status  # PENDING, COMPLETED, FAILED, TIMED_OUT, CANCELED

Each function uses ``client`` when given, else the process's default client on
AWS for the environment's settings (the one ``Task.trigger`` uses).
"""

from __future__ import annotations

from typing import Any

from durable_lambda.client import Client
from durable_lambda.engine.tokens import Token, TokenInfo, TokenStatus
from durable_lambda.services import default_client

__all__ = ["Token", "TokenInfo", "TokenStatus", "complete", "fail", "heartbeat", "retrieve"]


def complete(token_id: str, data: Any = None, *, client: Client | None = None) -> TokenInfo:
    """Complete the token with ``data`` (JSON types, pydantic models, dataclasses).

    Raises:
        TokenNotFoundError: No such token.
        TokenAlreadyResolvedError: It was resolved already (the error names
            how); nothing changed.
        PayloadTooLarge: ``data`` is above the maximum value size.
    """
    return (client or default_client()).complete_token(token_id, data)


def fail(
    token_id: str, error_type: str, message: str = "", *, client: Client | None = None
) -> TokenInfo:
    """Fail the token: the waiting task gets ``TokenFailedError(error_type, message)``.

    Raises:
        TokenNotFoundError: No such token.
        TokenAlreadyResolvedError: It was resolved already; nothing changed.
    """
    return (client or default_client()).fail_token(token_id, error_type, message)


def heartbeat(token_id: str, *, client: Client | None = None) -> TokenInfo:
    """Say the work behind the token is alive: its heartbeat deadline moves out.

    Raises:
        TokenNotFoundError: No such token.
        TokenAlreadyResolvedError: It was resolved already.
    """
    return (client or default_client()).heartbeat_token(token_id)


def retrieve(token_id: str, *, client: Client | None = None) -> TokenInfo:
    """The token: status, run id, deadlines, timestamps and data (``.value()`` decodes it).

    Raises:
        TokenNotFoundError: No such token.
    """
    return (client or default_client()).retrieve_token(token_id)
