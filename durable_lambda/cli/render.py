"""How the CLI shows things: JSON for scripts, rich tables and trees for people.

Stored values (payloads, outputs, step results) are JSON text; the JSON output
parses them so a script reads objects, not strings holding JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from durable_lambda.engine.journal import EntryKind, JournalEntry
from durable_lambda.engine.records import EventKind, RunRecord, TimelineEvent
from durable_lambda.engine.slots import QueueState
from durable_lambda.engine.state import RunStatus
from durable_lambda.replay_check import CheckReport

_STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELED: "yellow",
    RunStatus.EXPIRED: "yellow",
    RunStatus.RUNNING: "cyan",
}
#: Characters of a value shown inline before it is cut (the JSON output is never cut).
_SHOWN = 120


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: dataclasses as objects, times as ISO text, enums as values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def parsed(text: str | None) -> Any:
    """Stored JSON text as data (text that is not JSON stays text)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run record as JSON data, its payload and output parsed."""
    data: dict[str, Any] = jsonable(run)
    data["payload"] = parsed(run.payload)
    data["output"] = parsed(run.output)
    data["duration_seconds"] = duration(run)
    return data


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """A journal entry as JSON data, with its key and parsed result."""
    data: dict[str, Any] = jsonable(entry)
    data["key"] = entry.key
    data["result"] = parsed(entry.result)
    return data


def queue_json(state: QueueState) -> dict[str, Any]:
    """A queue's counter as JSON data."""
    return {
        "queue": state.key.queue,
        "concurrency_key": state.key.concurrency_key,
        "count": state.count,
        "limit": state.limit,
        "code_limit": state.code_limit,
        "limit_override": state.limit_override,
        "waiting": state.waiting,
        "paused": state.paused,
        "holders": [h.run_id for h in state.holders],
    }


def duration(run: RunRecord) -> float | None:
    """Seconds from the run's first start (else its trigger) to its end (or its last update)."""
    start = run.started_at or run.created_at
    end = run.finished_at or run.updated_at
    return round((end - start).total_seconds(), 3) if end >= start else None


def status_text(status: RunStatus) -> str:
    """The status in its colour."""
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status.value}[/]" if style else status.value


def short(value: Any) -> str:
    """A value on one line, cut to a readable length."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}…"


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """Runs as a table: id, task, status, attempt, invocations, created, duration, tags."""
    table = Table("run", "task", "status", "attempt", "inv.", "created", "duration", "tags")
    for run in runs:
        took = duration(run)
        table.add_row(
            run.run_id,
            run.task_id,
            status_text(run.status),
            str(run.attempt),
            str(run.invocations),
            f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            "" if took is None else f"{took:.1f}s",
            ",".join(run.tags),
        )
    return table


def queues_table(states: Sequence[QueueState]) -> Table:
    """Queue counters as a table."""
    table = Table("queue", "key", "running", "limit", "waiting", "paused")
    for state in states:
        limit = "∞" if state.limit is None else str(state.limit)
        if state.limit_override is not None:
            limit += f" (override; code {state.code_limit})"
        table.add_row(
            state.key.queue,
            state.key.concurrency_key or "",
            str(state.count),
            limit,
            str(state.waiting),
            "yes" if state.paused else "",
        )
    return table


def timeline_tree(
    run: RunRecord, journal: Sequence[JournalEntry], events: Sequence[TimelineEvent]
) -> Tree:
    """A run's timeline as a tree: the run, its values, its journal by scope, its events."""
    took = duration(run)
    invocations = sum(e.kind is EventKind.INVOCATION_STARTED for e in events) or run.invocations
    root = Tree(
        f"[bold]{run.run_id}[/] {run.task_id} {status_text(run.status)} · attempt {run.attempt}"
        f" · {invocations} invocation(s)" + ("" if took is None else f" · {took:.3f}s")
    )
    root.add(f"payload {short(parsed(run.payload))}")
    if run.output is not None:
        root.add(f"output {short(parsed(run.output))}")
    if run.error is not None:
        root.add(f"[red]error {run.error.type}: {short(run.error.message)}[/]")
    if run.metadata:
        root.add(f"metadata {short(jsonable(run.metadata))}")
    if run.parent_run_id:
        root.add(f"parent {run.parent_run_id} (depth {run.depth})")
    _journal_branch(root.add("journal"), journal)
    timeline = root.add("timeline")
    for event in events:
        delay = "" if event.delay is None else f" (+{event.delay:g}s)"
        timeline.add(f"{event.at:%H:%M:%S.%f} {event.kind.value} {event.detail}{delay}".rstrip())
    return root


def _journal_branch(branch: Tree, journal: Sequence[JournalEntry]) -> None:
    scopes: dict[str, Tree] = {"": branch}

    def scope_node(path: str) -> Tree:
        node = scopes.get(path)
        if node is None:
            parent, _, leaf = path.rpartition("/")
            node = scopes[path] = scope_node(parent).add(f"[dim]scope[/] {leaf}")
        return node

    for entry in sorted(journal, key=lambda e: e.seq):
        node = scope_node(entry.scope).add(_entry_label(entry))
        if entry.kind in (EntryKind.CHILD, EntryKind.CHILD_WAIT):
            data = parsed(entry.result) or {}
            results = {r.get("run"): r for r in data.get("results", []) if isinstance(r, dict)}
            for child in data.get("runs", []):
                status = results.get(child, {}).get("status", "")
                node.add(f"child {child} {status}".rstrip())


def _entry_label(entry: JournalEntry) -> str:
    parts = [f"{entry.name}#{entry.occurrence}", entry.kind.value.lower(), entry.status.value]
    if entry.attempts > 1:
        parts.append(f"{entry.attempts} attempts")
    if entry.started_at is not None and entry.ended_at is not None:
        parts.append(f"{(entry.ended_at - entry.started_at).total_seconds():.3f}s")
    if entry.wake_at is not None and entry.ended_at is None:
        parts.append(f"until {entry.wake_at:%Y-%m-%d %H:%M:%S}")
    label = " ".join(parts)
    if entry.error is not None:
        label += f" [red]{entry.error.type}: {short(entry.error.message)}[/]"
    return label


def print_check(console: Console, report: CheckReport) -> None:
    """A replay check's findings: one line per broken run, then the summary."""
    for run in report.broken:
        where = (
            f"{run.scope or 'task body'} position {run.position}"
            if run.position is not None
            else ""
        )
        console.print(
            f"[red]BREAKS[/] {run.run_id} ({run.task_id}, {run.status.value}) {run.verdict.value}"
            + (f" at {where}: recorded {run.recorded!r}, now {run.now!r}" if where else "")
            + ("" if where else f": {run.detail}"),
            highlight=False,
        )
    summary = f"{len(report.runs)} run(s) checked, {len(report.broken)} would break"
    console.print(f"[green]{summary}[/]" if report.ok else f"[red]{summary}[/]")
