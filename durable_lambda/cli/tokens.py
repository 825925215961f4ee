"""``durable-lambda tokens``: complete, fail, heartbeat and show wait tokens.

A person approving from a terminal, or a script without the HTTP API::

    durable-lambda tokens complete tok_... --data '{"approved": true}'
    durable-lambda tokens fail tok_... --type Rejected --message "not this week"
    durable-lambda tokens show tok_... --json

Completing wakes the waiting run at once, so the resume queue must be known
(``--queue-url`` or ``DL_RESUME_QUEUE_URL``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from durable_lambda.cli.app import (
    emit,
    read_payload,
)
from durable_lambda.cli.options import (
    VIA_API,
    WHERE,
    Json,
    reaching,
)
from durable_lambda.cli.target import (
    CliError,
    Target,
)
from durable_lambda.engine.tokens import TokenInfo

tokens_app = typer.Typer(
    help="Complete, fail, heartbeat and show wait tokens.", no_args_is_help=True
)

TokenId = Annotated[str, typer.Argument(help="The token's id (tok_...).")]
Data = Annotated[str | None, typer.Option("--data", "-d", help="JSON text, or @file holding JSON.")]


def token_json(token: TokenInfo) -> dict[str, Any]:
    """The token for ``--json``: its state and deadlines, never its secret; data when present."""

    def iso(moment: Any) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "token_id": token.token_id,
        "run_id": token.run_id,
        "status": token.status.value,
        "name": token.name,
        "created_at": iso(token.created_at),
        "timeout_at": iso(token.timeout_at),
        "heartbeat_at": iso(token.heartbeat_at),
        "resolved_at": iso(token.resolved_at),
        "timeout_reason": token.timeout_reason,
        "error": None
        if token.error is None
        else {"type": token.error.type, "message": token.error.message},
        "tags": list(token.tags),
    }


def _show(token: TokenInfo, *, as_json: bool, what: str) -> None:
    def human(console: Console) -> None:
        # One line whatever the width: a token id (which names its run) is
        # copied from here, and a line broken by the console reads as two.
        line = f"token {token.token_id} {what}: {token.status.value} (run {token.run_id})"
        console.print(line, soft_wrap=True)

    emit(token_json(token), as_json=as_json, human=human)


def _client(target: Target, *, resolves: bool = False) -> Any:
    """The HTTP API's client when the target goes through it, else the table's."""
    api = target.api()
    if api is not None:
        return api
    if resolves:
        target.require_queue()  # a resolution nudges the run through it
    return target.services().client


@tokens_app.command("complete")
@reaching(*WHERE, "bucket", "queue_url", *VIA_API)
def tokens_complete(
    token_id: TokenId,
    *,
    data: Data = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Complete TOKEN_ID with --data (JSON; default null): its run wakes with that data."""
    value = None if data is None else read_payload(data, option="--data")
    client = _client(target, resolves=True)
    _show(client.complete_token(token_id, value), as_json=json_, what="completed")


@tokens_app.command("fail")
@reaching(*WHERE, "bucket", "queue_url", *VIA_API)
def tokens_fail(
    token_id: TokenId,
    *,
    error_type: Annotated[
        str | None, typer.Option("--type", help="The error type the task sees.")
    ] = None,
    message: Annotated[str, typer.Option("--message", help="The error's message.")] = "",
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help='Instead of --type/--message: {"type", "message"}.'),
    ] = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Fail TOKEN_ID: its run raises TokenFailedError(type, message) where it waits."""
    if data is not None:
        if error_type is not None:
            raise CliError("fail takes --type/--message or --data, not both")
        error = read_payload(data, option="--data")
        if not isinstance(error, dict) or not isinstance(error.get("type"), str):
            raise CliError('--data for fail must be a JSON object {"type": ..., "message": ...}')
        error_type, message = error["type"], str(error.get("message", ""))
    if error_type is None:
        raise CliError("fail needs --type (or --data with a type)")
    client = _client(target, resolves=True)
    _show(client.fail_token(token_id, error_type, message), as_json=json_, what="failed")


@tokens_app.command("heartbeat")
@reaching(*WHERE, *VIA_API)
def tokens_heartbeat(
    token_id: TokenId,
    *,
    json_: Json = False,
    target: Target,
) -> None:
    """Record a heartbeat on TOKEN_ID: its heartbeat deadline moves out."""
    client = _client(target)
    _show(client.heartbeat_token(token_id), as_json=json_, what="heartbeat")


@tokens_app.command("show")
@reaching(*WHERE, "bucket", *VIA_API)
def tokens_show(
    token_id: TokenId,
    *,
    json_: Json = False,
    target: Target,
) -> None:
    """Show TOKEN_ID: status, run, deadlines (not its data)."""
    client = _client(target)
    _show(client.retrieve_token(token_id), as_json=json_, what="is")
