"""``durable-lambda tasks list``: the task catalog (queue, limits, retry, cron, payload schema).

Through the table it reads the catalog the deployed functions published and
adds the tasks of any ``--tasks-module`` not catalogued yet (as ``GET /tasks``
does); through the HTTP API it asks ``GET /tasks``.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from durable_lambda.catalog import TaskDescription, describe
from durable_lambda.cli.app import (
    emit,
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

tasks_app = typer.Typer(help="The task catalog.", no_args_is_help=True)


def schema_summary(schema: dict[str, Any]) -> str:
    """A JSON Schema on one line: an object's fields (``*``: required), else its type."""
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = set(schema.get("required") or ())
        return ", ".join(f"{name}{'*' if name in required else ''}" for name in properties)
    kind = schema.get("type")
    return str(kind) if kind else "any"


def task_json(description: TaskDescription) -> dict[str, Any]:
    """A catalog entry for ``--json``: the description as stored, with the payload summary."""
    data: dict[str, Any] = description.model_dump(mode="json")
    data["payload_summary"] = schema_summary(description.payload_schema)
    return data


def tasks_table(descriptions: list[TaskDescription]) -> RichTable:
    """The catalog as a table: id, queue, limits, retry, cron, payload fields."""
    table = RichTable("task", "queue", "limit", "rate", "retry", "cron", "payload")
    for d in descriptions:
        q, r = d.queue, d.retry
        rate = "" if q.rate_limit is None else f"{q.rate_limit}/{q.rate_period_seconds:g}s"
        cron = "" if d.cron is None else f"{d.cron} ({d.timezone})"
        table.add_row(
            d.task_id,
            q.name,
            "" if q.concurrency_limit is None else str(q.concurrency_limit),
            rate,
            f"{r.max_attempts} attempt(s)",
            cron,
            schema_summary(d.payload_schema),
        )
    return table


def catalog(target: Target) -> list[TaskDescription]:
    """The catalogued tasks, with the loaded modules' tasks not catalogued yet, by id."""
    api = target.api()
    if api is not None:
        return sorted(api.tasks(), key=lambda d: d.task_id)
    registry = target.load_tasks() if target.settings().task_modules else None
    client = target.services(registry).client
    found = {d.task_id: d for d in client.catalog.list()} if client.catalog is not None else {}
    for task in registry.tasks() if registry is not None else ():
        found.setdefault(task.id, describe(task))
    return [found[task_id] for task_id in sorted(found)]


@tasks_app.command("list")
@reaching(*WHERE, "task_modules", *VIA_API)
def tasks_list(
    *,
    json_: Json = False,
    target: Target,
) -> None:
    """List the tasks the stack knows: queue, limits, retry, cron and payload fields."""
    found = catalog(target)

    def human(console: Console) -> None:
        console.print(tasks_table(found) if found else "no tasks catalogued")

    emit([task_json(d) for d in found], as_json=json_, human=human)
