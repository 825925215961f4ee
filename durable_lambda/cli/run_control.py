"""``durable-lambda runs cancel|replay``: steer a run that exists.

durable-lambda runs cancel run_01...          # at once, or at its next step boundary
durable-lambda runs replay run_01... --from-step charge_card
"""

from __future__ import annotations

from typing import Annotated

import typer

from durable_lambda.cli import render
from durable_lambda.cli.app import (
    emit,
    read_payload,
    runs_app,
)
from durable_lambda.cli.options import (
    VIA_API,
    WHERE,
    Json,
    reaching,
)
from durable_lambda.cli.target import (
    Target,
)
from durable_lambda.engine.state import RunStatus


@runs_app.command("replay")
@reaching(*WHERE, "bucket", "queue_url", "task_modules", *VIA_API)
def runs_replay(
    run_id: Annotated[str, typer.Argument(help="The run to replay.")],
    *,
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from-step",
            help="Copy the journal before this step (name or key, e.g. charge#1): "
            "those steps are not executed again and keep their recorded results.",
        ),
    ] = None,
    payload: Annotated[
        str | None,
        typer.Option("--payload", "-p", help="A new payload: JSON text, or @file (default: same)."),
    ] = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Replay RUN_ID: a new run of its task, linked to it, from the start or --from-step."""
    data = read_payload(payload) if payload is not None else None
    api = target.api()
    if api is not None:
        handle = api.replay(run_id, data, from_step)
    else:
        registry = target.load_tasks()
        target.require_queue()
        handle = target.services(registry).client.replay(run_id, data, from_step)
    out = {"run_id": handle.run_id, "task_id": handle.task_id, "replay_of": run_id}
    since = f" from step {from_step!r}" if from_step else ""
    emit(
        out,
        as_json=json_,
        human=lambda c: c.print(f"replaying {run_id}{since} as {handle.run_id} ({handle.task_id})"),
    )


@runs_app.command("cancel")
@reaching(*WHERE, "bucket", "queue_url", *VIA_API)
def runs_cancel(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    *,
    json_: Json = False,
    target: Target,
) -> None:
    """Cancel a run: at once while it waits, at its next step boundary while it runs."""
    api = target.api()
    if api is not None:
        view = api.cancel(run_id)
        status, data = view.status, view.model_dump(mode="json")
    else:
        target.require_queue()  # a parent's nudge and a handed-on unit's message go there
        run = target.services().client.cancel_run(run_id)
        status, data = run.status, render.run_json(run)
    if status is RunStatus.CANCELED:
        line = f"canceled {run_id}"
    else:
        line = f"cancel requested for {run_id}: it stops at its next step boundary"
    emit(data, as_json=json_, human=lambda c: c.print(line))
