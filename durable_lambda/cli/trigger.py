"""``durable-lambda trigger``: one run, or a batch from a JSON Lines file; ``--wait`` follows it.

Through the table the CLI imports the task's code and validates the payload
itself; through the HTTP API (``--api-url``, ``--via-api``) the API validates
it against the catalog, so no task module is needed.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from durable_lambda.cli import remote, render
from durable_lambda.cli.app import (
    app,
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
    no_tasks_hint,
)
from durable_lambda.engine.journal import EntryKind, EntryStatus
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import UnknownTaskError
from durable_lambda.task import RunHandle

if TYPE_CHECKING:
    from durable_lambda.api_client import ApiClient
    from durable_lambda.services import Services

#: Items per trigger_batch call: the API takes at most 1,000; smaller moves the bar more often.
BATCH_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the progress line shows of a run being followed.

    Attributes:
        run_id: The run.
        status: Its status.
        steps_done: Steps completed so far.
        invocations: Invocations so far.
    """

    run_id: str
    status: RunStatus
    steps_done: int
    invocations: int

    def describe(self) -> str:
        """The progress line's text."""
        return (
            f"{self.run_id} {self.status.value} · {self.steps_done} step(s) done"
            f" · {self.invocations} invocation(s)"
        )


def follow(
    read: Callable[[], Snapshot],
    *,
    timeout: float,
    poll: float,
    console: Console | None = None,
) -> Snapshot:
    """Read the run until it is terminal, with a live status line (status, steps, elapsed).

    Raises:
        CliError: Still not finished after ``timeout`` seconds (names its status).
    """
    deadline = time.monotonic() + timeout
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    out = console or Console(stderr=True)
    with Progress(*columns, console=out, transient=console is None) as progress:
        bar = progress.add_task("triggered", total=None)
        while True:
            seen = read()
            progress.update(bar, description=seen.describe())
            if seen.status.is_terminal:
                return seen
            if time.monotonic() >= deadline:
                raise CliError(
                    f"run {seen.run_id} still {seen.status.value} after {timeout:g} s "
                    "(it goes on; follow it with `durable-lambda runs show`)"
                )
            time.sleep(poll)


def read_batch(text: str) -> list[Any]:
    """``--batch @file.jsonl``: one JSON payload per non-empty line.

    Raises:
        CliError: The file is missing, empty, or a line is not JSON (its number named).
    """
    path = Path(text.removeprefix("@"))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read batch file {str(path)!r}: {exc.strerror}") from exc
    payloads = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            payloads.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CliError(
                f"batch file {str(path)!r} line {number} is not valid JSON: {exc.msg}"
            ) from exc
    if not payloads:
        raise CliError(f"batch file {str(path)!r} holds no payload (one JSON value per line)")
    return payloads


def _batch(
    send: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    items: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Trigger ``items`` in chunks, a progress bar on stderr; one result per item."""
    results: list[dict[str, Any]] = []
    columns = (TextColumn("triggering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("batch", total=len(items))
        for start in range(0, len(items), BATCH_CHUNK):
            chunk = list(items[start : start + BATCH_CHUNK])
            for offset, result in enumerate(send(chunk)):
                results.append({**result, "index": start + offset})
            progress.advance(bar, len(chunk))
    return results


def _direct_batch(services: Services, task: str) -> Callable[[list[dict[str, Any]]], Any]:
    def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"run_id": o.handle.run_id, "cached": o.handle.cached, "error": None}
            if o.handle is not None
            else {"run_id": None, "cached": False, "error": str(o.error)}
            for o in services.client.trigger_batch(task, chunk)
        ]

    return send


def _api_batch(api: ApiClient, task: str) -> Callable[[list[dict[str, Any]]], Any]:
    def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "run_id": r.run_id,
                "cached": r.existing,
                "error": None if r.error is None else f"{r.error.type}: {r.error.message}",
            }
            for r in api.trigger_batch(task, chunk)
        ]

    return send


def _report_batch(task: str, results: list[dict[str, Any]], *, as_json: bool) -> None:
    refused = [r for r in results if r["error"] is not None]

    def human(console: Console) -> None:
        console.print(f"triggered {len(results) - len(refused)} run(s) of {task}")
        for r in refused:
            console.print(f"[red]line {r['index'] + 1} refused[/]: {r['error']}")

    emit({"task_id": task, "results": results}, as_json=as_json, human=human)
    if refused:
        typer.echo(f"error: {len(refused)} of {len(results)} item(s) refused", err=True)
        raise typer.Exit(1)


def _direct_snapshot(services: Services, run_id: str) -> Snapshot:
    run = services.client.get_run(run_id)
    done = sum(
        e.kind is EntryKind.STEP and e.status is EntryStatus.COMPLETED
        for e in services.worker.store.load_journal(run_id)
    )
    return Snapshot(run.run_id, run.status, done, run.invocations)


def _api_snapshot(api: ApiClient, run_id: str) -> Snapshot:
    detail = api.retrieve(run_id)
    return Snapshot(detail.run_id, detail.status, remote.steps_done(detail), detail.invocations)


def _direct_services(target: Target, task: str) -> Services:
    """The table's services with the task modules loaded (the CLI validates the payload).

    Raises:
        UnknownTaskError: ``task`` is not among the loaded tasks (they are named).
        CliError: No resume queue is configured.
    """
    registry = target.load_tasks()
    if task not in registry.ids():
        known = ", ".join(registry.ids()) or "none"
        hint = "" if registry.ids() else f"; {no_tasks_hint()}"
        raise UnknownTaskError(f"unknown task {task!r} (tasks loaded: {known}){hint}")
    target.require_queue()
    return target.services(registry)


def _wait_api(
    api: ApiClient, run_id: str, *, timeout: float, poll: float, as_json: bool
) -> tuple[RunStatus, str]:
    """Follow the run through the API, then print it; its status and error text."""
    follow(lambda: _api_snapshot(api, run_id), timeout=timeout, poll=poll)
    detail = api.retrieve(run_id, include_values=True)
    emit(
        remote.view_json(detail),
        as_json=as_json,
        human=lambda c: c.print(remote.detail_tree(detail)),
    )
    error = detail.error
    return detail.status, f": {error.type}: {error.message}" if error else ""


def _wait_direct(
    services: Services, run_id: str, *, timeout: float, poll: float, as_json: bool
) -> tuple[RunStatus, str]:
    """Follow the run through the table, then print it; its status and error text."""
    follow(lambda: _direct_snapshot(services, run_id), timeout=timeout, poll=poll)
    run = services.client.get_run(run_id)
    journal = services.worker.store.load_journal(run_id)
    events = services.worker.store.list_events(run_id)
    emit(
        render.run_json(run),
        as_json=as_json,
        human=lambda c: c.print(render.timeline_tree(run, journal, events)),
    )
    error = run.error
    return run.status, f": {error.type}: {error.message}" if error else ""


@app.command()
@reaching(*WHERE, "bucket", "queue_url", "task_modules", *VIA_API)
def trigger(
    task: Annotated[str, typer.Argument(help="The task's id.")],
    *,
    payload: Annotated[
        str, typer.Option("--payload", "-p", help="JSON text, or @file holding JSON.")
    ] = "null",
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch", help="@file.jsonl: one run per line (its payload), a progress bar."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait follows the run.")] = 300.0,
    poll: Annotated[float, typer.Option(help="Seconds between reads while waiting.")] = 1.0,
    idempotency_key: Annotated[str | None, typer.Option(help="Deduplicate triggers.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    concurrency_key: Annotated[str | None, typer.Option(help="Per-key concurrency.")] = None,
    priority: Annotated[int, typer.Option(help="Higher starts first in its queue.")] = 0,
    json_: Json = False,
    target: Target,
) -> None:
    """Trigger a run of TASK (its payload validated first); --wait follows it to its end."""
    if batch is not None and (wait or idempotency_key):
        raise CliError("--batch takes neither --wait nor --idempotency-key (one run per line)")
    options: dict[str, Any] = {
        "tags": tuple(tag or ()),
        "concurrency_key": concurrency_key,
        "priority": priority,
    }
    data = read_payload(payload) if batch is None else None
    api = target.api()
    if api is not None:
        trigger_one: Callable[..., RunHandle] = functools.partial(api.trigger, task)
        send = _api_batch(api, task)
        wait_for: Callable[..., tuple[RunStatus, str]] = functools.partial(_wait_api, api)
    else:
        services = _direct_services(target, task)
        trigger_one = functools.partial(services.client.trigger, task)
        send = _direct_batch(services, task)
        wait_for = functools.partial(_wait_direct, services)
    if batch is not None:
        items = [{"payload": p, **options} for p in read_batch(batch)]
        _report_batch(task, _batch(send, items), as_json=json_)
        return
    handle = trigger_one(data, idempotency_key=idempotency_key, **options)
    if not wait:
        out = {"run_id": handle.run_id, "task_id": task, "cached": handle.cached}
        emit(out, as_json=json_, human=lambda c: c.print(f"triggered {handle.run_id} ({task})"))
        return
    status, error = wait_for(handle.run_id, timeout=timeout, poll=poll, as_json=json_)
    if status is not RunStatus.COMPLETED:
        typer.echo(f"error: run {handle.run_id} ended {status.value}{error}", err=True)
        raise typer.Exit(1)
