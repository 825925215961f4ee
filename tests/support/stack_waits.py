"""Waiting on an emulated stack: runs to finish, and the worker's own reports."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from durable_lambda.engine.records import RunRecord
from durable_lambda.engine.state import RunStatus
from durable_lambda.local.stack import EmulatedStack


def wait_all(
    stack: EmulatedStack, run_ids: list[str], timeout: float, stranded_after: float | None = None
) -> list[RunRecord]:
    """Every run once terminal.

    Fails early, naming the run, when one has stayed SUSPENDED for ``stranded_after``
    seconds past its wake time: by then its resume message is lost. On a timeout the
    worker log's tail says what happened.
    """
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending:
        now = dt.datetime.now(dt.UTC)
        for run_id in list(pending):
            run = stack.client.get_run(run_id)
            if run.status.is_terminal:
                pending.remove(run_id)
            elif stranded_after is not None and run.status is RunStatus.SUSPENDED:
                due = max(run.wake_at or run.updated_at, run.updated_at)
                if (now - due).total_seconds() > stranded_after:
                    events = [
                        f"{event.at:%H:%M:%S.%f} {event.kind.value} {event.detail}"
                        for event in stack.client.store.list_events(run_id)[-3:]
                    ]
                    raise AssertionError(
                        f"run {run_id} is stranded: SUSPENDED at epoch {run.epoch} since "
                        f"{run.updated_at}, {stranded_after:g} s past its wake time: its "
                        f"resume message is lost and nothing sent it again; last events: {events}"
                    )
        if pending and time.monotonic() >= deadline:
            log = stack.log_dir / "worker.log"
            tail = log.read_text()[-3000:] if log.exists() else "(no worker log)"
            statuses = {run_id: stack.client.get_run(run_id).status.value for run_id in pending}
            raise AssertionError(
                f"runs not finished after {timeout:g} s: {statuses}\n"
                f"--- worker.log tail ---\n{tail}"
            )
        if pending:
            time.sleep(0.2)
    return [stack.client.get_run(run_id) for run_id in run_ids]


def worker_reports(stack: EmulatedStack) -> list[dict[str, Any]]:
    """The worker's "resume message processed" log records (JSON lines of worker.log)."""
    reports = []
    for line in (stack.log_dir / "worker.log").read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message") == "resume message processed":
            reports.append(record)
    return reports
