"""``durable-lambda dev``: the whole stack on this machine until Ctrl-C.

No Docker, no account: moto for AWS (or LocalStack for SQS, S3 and Logs),
the worker, scheduler and api functions emulated with real deadlines, the
HTTP API on localhost, a live line per run change, and a reload whenever a
task module's file changes.
"""

# ruff: noqa: ARG001 - `debug` is read by the @command wrapper, not the body

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from durable_lambda.cli.app import (
    app,
)
from durable_lambda.cli.options import (
    Debug,
    Json,
    command,
)
from durable_lambda.cli.render import status_text
from durable_lambda.cli.target import (
    CliError,
    no_tasks_hint,
)
from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import ENV_TASK_MODULES

#: Services an ``--endpoint-url`` carries; DynamoDB stays on the embedded moto
#: server (LocalStack's needs Java, absent here).
ENDPOINT_SERVICES = ("sqs", "s3", "logs")


def task_modules(tasks: str | None) -> list[str]:
    """``--tasks a,b`` or ``DL_TASK_MODULES``, split on commas.

    Raises:
        CliError: Neither names a module.
    """
    text = tasks if tasks is not None else os.environ.get(ENV_TASK_MODULES, "")
    modules = [m.strip() for m in text.split(",") if m.strip()]
    if not modules:
        raise CliError(
            f"dev needs task modules: {no_tasks_hint().replace('--tasks-module', '--tasks')}"
        )
    return modules


@app.command()
@command
def dev(
    *,
    tasks: Annotated[
        str | None,
        typer.Option(
            help=f"Task modules, comma-separated (env {ENV_TASK_MODULES}).", show_default=False
        ),
    ] = None,
    src: Annotated[Path, typer.Option(help="Folder the task modules are imported from.")] = Path(),
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The API's port (0: any free one).")
    ] = 8787,
    timeout: Annotated[
        float,
        typer.Option(min=1.0, help="The worker's Lambda timeout, seconds (short: chaining shows)."),
    ] = 30.0,
    persist: Annotated[
        Path | None,
        typer.Option(help="Keep the table and bucket in this JSON file across restarts."),
    ] = None,
    localstack: Annotated[
        bool, typer.Option("--localstack", help="SQS, S3 and Logs on LocalStack (LOCALSTACK_HOST).")
    ] = False,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", help="SQS, S3 and Logs on this endpoint (DynamoDB stays on moto)."
        ),
    ] = None,
    scheduler_interval: Annotated[
        float, typer.Option(min=0.5, help="Seconds between scheduler ticks.")
    ] = 5.0,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Run the stack locally: API on localhost, worker, scheduler, reload on change, until Ctrl-C.

    With --json, every event is one JSON line on stdout (the first: "ready", with the API URL).
    """
    from durable_lambda.local.dev_server import DevServer  # noqa: PLC0415 - moto loads only here

    modules = task_modules(tasks)
    endpoints = dict.fromkeys(ENDPOINT_SERVICES, endpoint_url) if endpoint_url else None
    console = Console(highlight=False)
    show = _json_line if json_ else _Human(console).show
    server = DevServer(
        modules,
        port=port,
        timeout=timeout,
        pythonpath=[str(src.resolve())],
        persist=persist,
        endpoints=endpoints,
        localstack=localstack,
        scheduler_interval=scheduler_interval,
        on_event=show,
    )
    stopped = threading.Event()
    # Ctrl-C and `kill` both end in the finally below. SIGINT is set explicitly: a shell
    # script starting `dev &` has it ignored, and `kill -INT` must still stop the stack.
    previous = {
        number: signal.signal(number, signal.default_int_handler)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server.start()
        stopped.wait()  # until SIGINT or SIGTERM raises KeyboardInterrupt here
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.stop()


def _json_line(event: dict[str, Any]) -> None:
    typer.echo(json.dumps(event, default=str))


class _Human:
    """Events as rich lines."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def show(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        print_ = self.console.print
        if kind == "ready":
            print_(f"[bold]durable-lambda dev[/]: tasks from {', '.join(event['task_modules'])}")
            url = event["api_url"]
            print_(f"  API      [bold cyan]{url}[/]  (OpenAPI document: {url}/openapi.json)")
            print_(f"  Viewer   [bold cyan]{event['viewer_url']}[/]")
            print_(f"  AWS      {event['moto_url']} (moto); function logs in {event['log_dir']}")
            groups = ", ".join(event.get("log_groups") or ())
            print_(f"  Logs     {groups} (durable-lambda runs logs RUN_ID --log-group ...)")
            print_(f"  watching {len(event['watching'])} file(s); Ctrl-C stops everything")
            if event.get("error"):
                print_(f"[red]the task modules failed to load[/]: {event['error']}")
        elif kind == "run":
            # Pad the plain word: the colour markup around it has no width on screen.
            status = status_text(RunStatus(event["status"])) + " " * (17 - len(event["status"]))
            took = event["duration_seconds"]
            line = (
                f"{event['run_id']}  {event['task_id']:<20} {status} "
                f"invocations {event['invocations']}"
                + (f"  {took:.1f} s" if took is not None else "")
            )
            print_(line + (f"  [red]{event['error']}[/]" if event.get("error") else ""))
        elif kind == "reloaded":
            names = ", ".join(Path(f).name for f in event["files"]) or "tasks"
            outcome = (
                f"[red]failed[/]: {event['error']}"
                if event.get("error")
                else "new invocations run the new code"
            )
            print_(f"[yellow]reloaded[/] {names}: {outcome}")
        elif kind in {"restored", "saved"}:
            print_(f"{kind} {event['items']} item(s), {event['objects']} object(s)")
        elif kind == "stopped":
            print_("stopped: no function, server or port left behind")
        elif kind == "error":
            print_(f"[red]error[/]: {event['error']}")
