"""``make demo``: the dev stack on this machine runs the sample tasks to their end, then stops.

A repository command, not part of the installed package: it runs the sample
tasks in ``functions/tasks``, which only a clone has (``python -m functions.demo``).

What ``durable-lambda dev`` starts, started here in-process: a moto server,
the worker, scheduler and api functions emulated as subprocesses with a
short real timeout, the HTTP API on localhost. The demo triggers each sample
over HTTP, approves the order as a manager would, and prints every run with
its invocations and duration. No Docker, no AWS account.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from durable_lambda.engine.records import RunQuery
from durable_lambda.local.dev_server import DevServer, Event

ROOT = Path(__file__).resolve().parents[1]
#: The worker's timeout: short, so the 12-chunk import visibly chains.
TIMEOUT_SECONDS = 6.0
#: Only stops a broken demo from hanging.
PATIENCE_SECONDS = 90.0

SAMPLES: list[tuple[str, Any]] = [
    ("checkout", {"order_id": "A-1001", "amount_cents": 4200}),
    ("import-chunks", {"chunks": 12, "seconds": 0.5}),
    ("index-documents", {"documents": [f"doc-{i}.pdf" for i in range(8)]}),
    ("publish-digest", {"sections": ["sales", "support", "infra"]}),
]

# Wide enough for the summary when the output is a pipe (CI, `make demo | tee`).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def show(event: Event) -> None:
    """The live stream: one line per run change, as ``durable-lambda dev`` prints it."""
    if event["event"] == "run":
        console.print(
            f"  [dim]{event['run_id']}[/] {event['task_id']:<17} {event['status']:<16} "
            f"invocations {event['invocations']}"
        )
    elif event["event"] == "reloaded" and event.get("error"):
        console.print(f"[red]task modules failed to load[/]: {event['error']}")


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the demo's own http://127.0.0.1 API
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def pending_token(dev: DevServer, run_id: str) -> str:
    """The id of the run's first pending wait token, once the run has created it."""
    client = dev.stack.client
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        for entry in client.store.load_journal(run_id):
            if entry.kind.value == "TOKEN" and entry.result:
                return str(json.loads(entry.result)["id"])
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} created no wait token")


def wait_all(dev: DevServer, run_ids: list[str]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        runs = [dev.stack.client.get_run(r) for r in run_ids]
        if all(r.status.is_terminal for r in runs):
            return
        time.sleep(0.3)


def summary(dev: DevServer, roots: list[str]) -> tuple[Table, int]:
    """The table of every run (children under their parent) and how many completed."""
    client = dev.stack.client
    runs = client.list_runs(RunQuery(limit=200))
    table = Table("task", "run", "status", "invocations", "duration", "notes")
    completed = 0
    for run_id in roots:
        run = client.get_run(run_id)
        children = [r for r in runs if r.parent_run_id == run_id]
        retried = [
            f"{e.key} {e.attempts} attempts"
            for e in client.store.load_journal(run_id)
            if e.attempts > 1
        ]
        notes = [*retried]
        if children:
            done = sum(c.status.value == "COMPLETED" for c in children)
            notes.append(f"{done}/{len(children)} child runs completed")
        start, end = run.started_at or run.created_at, run.finished_at or run.updated_at
        table.add_row(
            run.task_id,
            run.run_id,
            run.status.value,
            str(run.invocations),
            f"{(end - start).total_seconds():.1f} s",
            "; ".join(notes),
        )
        completed += run.status.value == "COMPLETED"
    return table, completed


def main() -> int:
    """Start the dev stack, run the samples, print them, stop."""
    console.print(f"durable-lambda demo: the dev stack with a {TIMEOUT_SECONDS:g} s worker timeout")
    with DevServer(
        ["functions.tasks"],
        port=0,
        timeout=TIMEOUT_SECONDS,
        pythonpath=[str(ROOT)],
        on_event=show,
    ) as dev:
        console.print(f"API {dev.url}  (OpenAPI document: {dev.url}/openapi.json)")
        console.print(f"Viewer {dev.url}/viewer  (open it while the demo runs)\n")
        roots = []
        for task_id, payload in SAMPLES:
            handle = post(f"{dev.url}/tasks/{task_id}/runs", {"payload": payload})
            console.print(f"triggered {task_id} over HTTP: {handle['run_id']}")
            roots.append(handle["run_id"])
        token = pending_token(dev, roots[0])
        console.print(f"approving the order: completing approval token {token} over HTTP")
        answer = {"approved": True, "by": "demo manager"}
        post(f"{dev.url}/tokens/{token}/complete", {"data": answer})
        wait_all(dev, roots)
        table, completed = summary(dev, roots)
        console.print(table)
        console.print(f"{completed} of {len(roots)} runs completed. API was {dev.url}")
    return 0 if completed == len(roots) else 1


if __name__ == "__main__":
    sys.exit(main())
