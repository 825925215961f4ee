"""What a run leaves in the worker log on the emulated stack: EMF metrics, never its payload."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from durable_lambda import RunStatus, Settings
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.run_metrics import (
    INVOCATIONS,
    INVOCATIONS_SUSPENDED,
    RUNS_COMPLETED,
    RUNS_STARTED,
    STEP_DURATION,
    TASK_DIMENSION,
)

HERE = Path(__file__).parent
CANARY = "canary-7f3a9c1e-payload-value"


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        start = line.find("{")
        if start >= 0:
            try:
                lines.append(json.loads(line[start:]))
            except json.JSONDecodeError:
                continue
    return lines


def _metric_totals(lines: list[dict[str, Any]], task_id: str) -> dict[str, list[float]]:
    totals: dict[str, list[float]] = {}
    for line in lines:
        emf = line.get("_aws")
        if emf is None or line.get(TASK_DIMENSION) != task_id:
            continue
        for directive in emf["CloudWatchMetrics"]:
            assert directive["Namespace"] == "DurableLambda"
            assert directive["Dimensions"] == [[TASK_DIMENSION, "service"]]
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                totals.setdefault(metric["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    return totals


def test_a_run_on_the_emulated_stack_emits_emf_metrics_per_task_and_never_logs_its_payload(
    tmp_path,
):
    stack = EmulatedStack(
        Settings(short_wait_seconds=0.5),
        task_modules=["emu_tasks"],
        timeout=5.0,
        pythonpath=[str(HERE)],
        scheduler_interval=1.0,
        log_dir=tmp_path,
    )
    with stack:
        handle = stack.trigger("emu-hello", {"name": CANARY})
        run = stack.wait_for(handle.run_id, timeout=60)
        # The run is COMPLETED at its last checkpoint; its invocation flushes the
        # metrics as it returns, and the poller deletes the message after that.
        deadline = time.monotonic() + 60
        while stack.poller.stats.deleted < 2 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
    assert run.status is RunStatus.COMPLETED

    text = (tmp_path / "worker.log").read_text()
    assert CANARY not in text
    lines = _json_lines(text)
    totals = _metric_totals(lines, "emu-hello")
    assert sum(totals[RUNS_STARTED]) == 1
    assert sum(totals[RUNS_COMPLETED]) == 1
    assert sum(totals[INVOCATIONS]) == 2  # the wait split the run in two invocations
    assert sum(totals[INVOCATIONS_SUSPENDED]) == 1
    assert len(totals[STEP_DURATION]) == 2  # two steps, each timed once
    assert all(handle.run_id not in json.dumps(line) for line in lines if "_aws" in line)
    ours = [line for line in lines if line.get("service") == "durable-lambda" and "level" in line]
    assert ours
    assert all(line["run_id"] == handle.run_id and line["invocation"] for line in ours)
    processed = [line for line in lines if line.get("message") == "resume message processed"]
    assert [line["run_id"] for line in processed] == [handle.run_id, handle.run_id]
