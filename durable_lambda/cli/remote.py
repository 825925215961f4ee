"""How commands show what the HTTP API answers (``--api-url``, ``--via-api``).

Through the API a command sees the API's views (:mod:`durable_lambda.views`),
not the table's records: ``--json`` prints them as the API sends them, and
people get the same table and tree shapes as from the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.tree import Tree

from durable_lambda.cli.render import short, status_text
from durable_lambda.views import RunDetail, RunSummary, TimelineEntry, ValueView


def view_json(view: RunSummary) -> dict[str, Any]:
    """A run view as JSON data, as the API sends it."""
    data: dict[str, Any] = view.model_dump(mode="json")
    return data


def _value(view: ValueView | None) -> str:
    if view is None:
        return "none"
    return short(view.value) if view.inline else f"({view.size} bytes, not inline)"


def _took(view: RunSummary) -> str:
    start, end = view.started_at or view.created_at, view.finished_at or view.updated_at
    return f"{(end - start).total_seconds():.1f}s" if end >= start else ""


def summaries_table(runs: Sequence[RunSummary]) -> Table:
    """Run views as a table: id, task, status, attempt, created, duration, tags."""
    table = Table("run", "task", "status", "attempt", "created", "duration", "tags")
    for run in runs:
        table.add_row(
            run.run_id,
            run.task_id,
            status_text(run.status),
            str(run.attempt),
            f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            _took(run),
            ",".join(run.tags),
        )
    return table


def _entry_label(entry: TimelineEntry) -> str:
    parts = [entry.name, entry.kind, entry.status or ""]
    if entry.attempts and entry.attempts > 1:
        parts.append(f"{entry.attempts} attempts")
    if entry.duration_ms is not None:
        parts.append(f"{entry.duration_ms / 1000:.3f}s")
    if entry.detail:
        parts.append(entry.detail)
    label = " ".join(p for p in parts if p)
    if entry.error is not None:
        label += f" [red]{entry.error.type}: {short(entry.error.message)}[/]"
    return label


def detail_tree(run: RunDetail) -> Tree:
    """A run view's timeline as a tree: the run, its values, its entries by scope."""
    root = Tree(
        f"[bold]{run.run_id}[/] {run.task_id} {status_text(run.status)} · attempt {run.attempt}"
        f" · {run.invocations} invocation(s) · {_took(run)}"
    )
    root.add(f"payload {_value(run.payload)}")
    if run.output is not None:
        root.add(f"output {_value(run.output)}")
    if run.error is not None:
        root.add(f"[red]error {run.error.type}: {short(run.error.message)}[/]")
    if run.parent_run_id:
        root.add(f"parent {run.parent_run_id}")
    scopes: dict[str, Tree] = {"": root.add("timeline")}

    def scope_node(path: str) -> Tree:
        node = scopes.get(path)
        if node is None:
            parent, _, leaf = path.rpartition("/")
            node = scopes[path] = scope_node(parent).add(f"[dim]scope[/] {leaf}")
        return node

    for entry in run.timeline:
        node = scope_node(entry.scope).add(_entry_label(entry))
        for child in entry.children:
            node.add(f"child {child}")
    return root


def steps_done(run: RunDetail) -> int:
    """How many of the run's steps have completed (for the progress line)."""
    return sum(e.kind == "step" and e.status == "COMPLETED" for e in run.timeline)
