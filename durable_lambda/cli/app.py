"""The ``durable-lambda`` command: trigger runs, inspect them, steer queues, check a deploy.

Every command takes ``--json`` (one JSON document on stdout, for scripts),
reaches the table, bucket and queue given by flags or the environment (see
``durable_lambda.cli.target``), prints one line naming the problem on error
and exits non-zero, with a traceback only under ``--debug``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from durable_lambda import replay_check
from durable_lambda.cli import remote, render
from durable_lambda.cli.options import (
    VIA_API,
    WHERE,
    Json,
    reaching,
)
from durable_lambda.cli.target import CliError, Target, no_tasks_hint
from durable_lambda.engine.records import RunQuery
from durable_lambda.engine.slots import QueueState
from durable_lambda.engine.state import RunStatus

app = typer.Typer(
    name="durable-lambda",
    help="Durable execution on plain AWS Lambda: trigger, inspect and steer runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runs_app = typer.Typer(
    help="List runs, show a run's timeline, cancel or replay a run.", no_args_is_help=True
)
queues_app = typer.Typer(help="See and steer queues: pause, resume, limits.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(queues_app, name="queues")


def main() -> None:
    """The console script's entry point."""
    app()


def emit(data: Any, *, as_json: bool, human: Callable[[Console], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` with a console."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        human(Console(highlight=False))


def _tasks(modules: list[str] | None) -> tuple[str, ...] | None:
    return tuple(modules) if modules else None


# -- payloads ---------------------------------------------------------------------------


def read_payload(text: str, *, option: str = "--payload") -> Any:
    """``--payload`` (or ``option``): JSON text, or ``@path`` of a JSON file.

    Raises:
        CliError: The file is missing or the text is not JSON (with the line and column).
    """
    source = option
    what = option.lstrip("-")
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {what} file {str(path)!r}: {exc.strerror}") from exc
        source = f"{what} file {str(path)!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


# -- runs -------------------------------------------------------------------------------


@runs_app.command("list")
@reaching(*WHERE, "bucket", *VIA_API)
def runs_list(
    *,
    task: Annotated[str | None, typer.Option(help="Only this task's runs.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    json_: Json = False,
    target: Target,
) -> None:
    """List runs, newest first (filters: --task, --status, --tag)."""
    api = target.api()
    if api is not None:
        page = api.list_runs(task=task, status=status, tag=tag, limit=limit)
        emit(
            [remote.view_json(r) for r in page.runs],
            as_json=json_,
            human=lambda c: c.print(remote.summaries_table(page.runs)),
        )
        return
    client = target.services().client
    runs = client.list_runs(RunQuery(task_id=task, status=status, limit=limit))
    if tag is not None:
        runs = [r for r in runs if tag in r.tags]
    emit(
        [render.run_json(r) for r in runs],
        as_json=json_,
        human=lambda c: c.print(render.runs_table(runs)),
    )


@runs_app.command("show")
@reaching(*WHERE, "bucket", *VIA_API)
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    *,
    json_: Json = False,
    target: Target,
) -> None:
    """Show a run's timeline: steps by scope, attempts, waits, children, invocations, errors."""
    api = target.api()
    if api is not None:
        detail = api.retrieve(run_id, include_values=True)
        emit(
            remote.view_json(detail),
            as_json=json_,
            human=lambda c: c.print(remote.detail_tree(detail)),
        )
        return
    services = target.services()
    run = services.client.get_run(run_id)
    store = services.worker.store
    journal = store.load_journal(run_id)
    events = store.list_events(run_id)
    data = {
        "run": render.run_json(run),
        "journal": [render.entry_json(e) for e in journal],
        "events": [render.jsonable(e) for e in events],
    }
    emit(data, as_json=json_, human=lambda c: c.print(render.timeline_tree(run, journal, events)))


# -- queues -----------------------------------------------------------------------------


@queues_app.command("list")
@reaching(*WHERE, "task_modules")
def queues_list(
    *,
    queue: Annotated[list[str] | None, typer.Option(help="A queue to show (repeatable).")] = None,
    json_: Json = False,
    target: Target,
) -> None:
    """List the queues of the loaded tasks (and --queue names): running, limit, waiting, paused."""
    registry = target.load_tasks()
    names = dict.fromkeys([*(t.queue.name for t in registry.tasks()), *(queue or ())])
    if not names:
        raise CliError(f"no queues to list: pass --queue NAME, or {no_tasks_hint()}")
    client = target.services(registry).client
    states = [client.queue_state(name) for name in names]
    emit(
        [render.queue_json(s) for s in states],
        as_json=json_,
        human=lambda c: c.print(render.queues_table(states)),
    )


QueueName = Annotated[str, typer.Argument(help="The queue's name.")]
ConcurrencyKey = Annotated[
    str | None, typer.Option("--key", help="One concurrency key of the queue.")
]


@queues_app.command("pause")
@reaching(*WHERE)
def queues_pause(
    name: QueueName,
    *,
    key: ConcurrencyKey = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Pause a queue: it starts nothing until resumed (running invocations finish)."""
    client = target.services().client
    _show_queue(client.pause_queue(name, key), as_json=json_, what="paused")


@queues_app.command("resume")
@reaching(*WHERE)
def queues_resume(
    name: QueueName,
    *,
    key: ConcurrencyKey = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Resume a paused queue; parked runs are handed units at once."""
    client = target.services().client
    _show_queue(client.resume_queue(name, key), as_json=json_, what="resumed")


@queues_app.command("set-limit")
@reaching(*WHERE)
def queues_set_limit(
    name: QueueName,
    limit: Annotated[int | None, typer.Argument(help="The new limit (omit with --clear).")] = None,
    *,
    clear: Annotated[bool, typer.Option(help="Return to the limit in code.")] = False,
    key: ConcurrencyKey = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Override a queue's concurrency limit at runtime (--clear returns to the code's)."""
    if (limit is None) == (not clear):
        raise CliError("set-limit takes a LIMIT or --clear (one of them)")
    client = target.services().client
    state = client.set_queue_limit(name, None if clear else limit, key)
    _show_queue(state, as_json=json_, what="limit set")


def _show_queue(state: QueueState, *, as_json: bool, what: str) -> None:
    def human(console: Console) -> None:
        console.print(f"{state.key.id}: {what}")
        console.print(render.queues_table([state]))

    emit(render.queue_json(state), as_json=as_json, human=human)


# -- replay-check -----------------------------------------------------------------------


@app.command("replay-check")
@reaching(*WHERE, "bucket", "task_modules")
def replay_check_command(
    *,
    window_hours: Annotated[
        float, typer.Option(min=0, help="Also check runs that ended this recently (0: none).")
    ] = 24.0,
    task: Annotated[str | None, typer.Option(help="Only this task's runs.")] = None,
    run: Annotated[list[str] | None, typer.Option(help="Only this run (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs per status.")] = 1000,
    json_: Json = False,
    target: Target,
) -> None:
    """Replay in-flight (and recently ended) runs against the current code; exit 1 if any breaks.

    Nothing executes and nothing is written: the replay stops where a run's
    journal ends.
    """
    registry = target.load_tasks()
    if not registry.ids():
        raise CliError(f"no tasks loaded to check against: {no_tasks_hint()}")
    store = target.services(registry).worker.store
    report = replay_check.check(
        store,
        registry,
        window=dt.timedelta(hours=window_hours),
        task_id=task,
        run_ids=tuple(run or ()),
        limit=limit,
    )
    emit(report.to_json(), as_json=json_, human=lambda c: render.print_check(c, report))
    if not report.ok:
        raise typer.Exit(1)
