"""``durable-lambda runs logs RUN_ID``: the functions' log lines about one run.

The worker logs JSON lines with the ``run_id`` of the message it handles (and
the scheduler names the runs it touches), so a run's lines are those holding
its id: read from CloudWatch Logs with ``filter_log_events`` (the groups
``/aws/lambda/<function>`` of the stack's worker and scheduler, or
``--log-group``), or from the log files an emulated stack writes (``--log-dir``,
the folder ``dev`` prints: ``worker.log``, ``scheduler.log``, ``api.log``).
``--follow`` keeps reading until the run has ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from durable_lambda.cli.app import (
    runs_app,
)
from durable_lambda.cli.options import (
    VIA_API,
    WHERE,
    Json,
    reaching,
)
from durable_lambda.cli.target import (
    OUTPUT_SCHEDULER,
    OUTPUT_WORKER,
    CliError,
    Target,
)
from durable_lambda.engine.state import RunStatus

#: The functions' log files in ``EmulatedStack.log_dir`` (``dev`` adds the api's).
LOG_FILES = ("worker.log", "scheduler.log", "api.log")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line about the run.

    Attributes:
        source: The log group (or file) it came from.
        message: The line as logged.
        timestamp: Milliseconds since the epoch (``None``: a file line without one).
        stream: The log stream (CloudWatch Logs), else ``""``.
        event_id: CloudWatch's id of the event (a file's ``name:line``): seen once.
    """

    source: str
    message: str
    timestamp: int | None = None
    stream: str = ""
    event_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The line for ``--json``: a JSON message is parsed into ``record``."""
        try:
            record = json.loads(self.message)
        except ValueError:
            record = None
        return {
            "source": self.source,
            "stream": self.stream,
            "timestamp": self.timestamp,
            "message": self.message.rstrip("\n"),
            "record": record if isinstance(record, dict) else None,
        }


def cloudwatch_lines(logs: Any, groups: list[str], run_id: str, since: int = 0) -> list[LogLine]:
    """The lines of ``groups`` holding ``run_id`` from ``since`` (ms), oldest first."""
    found: list[LogLine] = []
    paginator = logs.get_paginator("filter_log_events")
    for group in groups:
        # A quoted term: CloudWatch matches the exact run id anywhere in the line.
        pages = paginator.paginate(logGroupName=group, filterPattern=f'"{run_id}"', startTime=since)
        found.extend(
            LogLine(group, e["message"], e["timestamp"], e["logStreamName"], e["eventId"])
            for page in pages
            for e in page.get("events", [])
            if run_id in e["message"]  # the filter is the service's; this check is ours
        )
    return sorted(found, key=lambda line: line.timestamp or 0)


def file_lines(log_dir: Path, run_id: str) -> list[LogLine]:
    """The lines of an emulated stack's log files holding ``run_id``, file by file."""
    if not log_dir.is_dir():
        raise CliError(f"no log directory {str(log_dir)!r}")
    found: list[LogLine] = []
    for name in LOG_FILES:
        path = log_dir / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            found.extend(
                LogLine(name, line.rstrip("\n"), event_id=f"{name}:{number}")
                for number, line in enumerate(lines, start=1)
                if run_id in line
            )
    return found


def _groups(target: Target, log_group: list[str] | None) -> list[str]:
    if log_group:
        return list(log_group)
    if target.stack:
        worker = target.output(OUTPUT_WORKER)
        groups = [f"/aws/lambda/{worker}"]
        if target.outputs.get(OUTPUT_SCHEDULER):
            groups.append(f"/aws/lambda/{target.outputs[OUTPUT_SCHEDULER]}")
        return groups
    raise CliError(
        "runs logs reads --stack NAME's function logs, --log-group GROUP or --log-dir DIR"
    )


def _status(target: Target, run_id: str) -> RunStatus:
    api = target.api()
    if api is not None:
        return api.retrieve(run_id).status
    return target.services().client.get_run(run_id).status


def _print(line: LogLine, console: Console, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(line.to_json()))
    else:
        console.print(f"[dim]{line.source}[/] {escape(line.message)}")


def _reads(
    target: Target, groups: list[str], log_dir: Path | None, run_id: str
) -> Iterator[list[LogLine]]:
    """Batches of lines not seen before, one per read (an endless generator)."""
    seen: set[str] = set()
    since = 0
    logs = None if log_dir is not None else target.session().client("logs")
    while True:
        lines = (
            file_lines(log_dir, run_id)
            if log_dir
            else cloudwatch_lines(logs, groups, run_id, since)
        )
        fresh = [line for line in lines if line.event_id not in seen]
        seen.update(line.event_id for line in fresh)
        # The same millisecond may hold lines not yet delivered: read it again.
        since = max([since, *(line.timestamp or 0 for line in fresh)])
        yield fresh


@runs_app.command("logs")
@reaching(*WHERE, *VIA_API)
def runs_logs(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    *,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep reading until the run has ended.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between reads with --follow.")] = 2.0,
    log_group: Annotated[
        list[str] | None,
        typer.Option("--log-group", help="A CloudWatch log group (repeatable)."),
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option("--log-dir", help="An emulated stack's log folder (worker.log...)."),
    ] = None,
    json_: Json = False,
    target: Target,
) -> None:
    """Print the functions' log lines about RUN_ID (--json: a list; with --follow, one per line)."""
    groups = [] if log_dir is not None else _groups(target, log_group)
    reads = _reads(target, groups, log_dir, run_id)
    console = Console(highlight=False)
    if not follow:
        lines = next(reads)
        if json_:
            typer.echo(json.dumps([line.to_json() for line in lines], indent=2))
        else:
            for line in lines:
                _print(line, console, as_json=False)
        return
    while True:
        # The status first: lines logged before the run ended are then all in the next read.
        ended = _status(target, run_id).is_terminal
        for line in next(reads):
            _print(line, console, as_json=json_)
        if ended:
            return
        time.sleep(poll)
