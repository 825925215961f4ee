"""What a run leaves in the worker log on the emulated stack: EMF metrics, never its payload."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from cfn_template import saved_queries
from insights import rows_of, run_query

from durable_lambda import RunStatus, Settings
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.run_metrics import (
    CHECKPOINT_BYTES,
    DEAD_LETTERS,
    INVOCATIONS,
    INVOCATIONS_SUSPENDED,
    OVERDUE_RUNS,
    RESUME_LAG,
    RUN_HOPS,
    RUNS_COMPLETED,
    RUNS_STARTED,
    SLOT_WAIT,
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
        flaky = stack.trigger("emu-flaky", {"marker": uuid.uuid4().hex})
        broken = stack.trigger("emu-broken", {"marker": CANARY})
        runs = [stack.wait_for(h.run_id, timeout=60) for h in (handle, flaky, broken)]
        # A run is COMPLETED at its last checkpoint; its invocation flushes the
        # metrics as it returns, and the poller deletes the message after that.
        deadline = time.monotonic() + 60
        while stack.poller.stats.deleted < 5 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
    statuses = [run.status for run in runs]
    assert statuses == [RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.FAILED]

    text = (tmp_path / "worker.log").read_text()
    assert CANARY not in text
    lines = _json_lines(text)
    totals = _metric_totals(lines, "emu-hello")
    assert sum(totals[RUNS_STARTED]) == 1
    assert sum(totals[RUNS_COMPLETED]) == 1
    assert sum(totals[INVOCATIONS]) == 2  # the wait split the run in two invocations
    assert sum(totals[INVOCATIONS_SUSPENDED]) == 1
    assert len(totals[STEP_DURATION]) == 2  # two steps, each timed once
    assert totals[RUN_HOPS] == [2]  # counted once, when the run ended
    assert sum(totals[CHECKPOINT_BYTES]) > 0
    assert (
        len(totals[RESUME_LAG]) == 1
    )  # the invocation after its wait (a new run has no wake time)
    assert len(totals[SLOT_WAIT]) == 1  # its first start only
    assert all(handle.run_id not in json.dumps(line) for line in lines if "_aws" in line)
    logged = [line for line in lines if line.get("service") == "durable-lambda" and "level" in line]
    # Lines of the init phase (the catalog published at a cold start) belong to no message.
    init = [line for line in logged if "invocation" not in line]
    assert {line["message"] for line in init} <= {"task catalog published"}
    ours = [line for line in logged if "invocation" in line]
    assert ours
    ids = {h.run_id for h in (handle, flaky, broken)}
    assert all(line["run_id"] in ids and line["invocation"] for line in ours)
    processed = [
        line
        for line in lines
        if line.get("message") == "resume message processed" and line["run_id"] == handle.run_id
    ]
    assert [line["run_id"] for line in processed] == [handle.run_id, handle.run_id]
    hops = [(line["task_id"], line["hops"]) for line in processed]
    assert hops == [("emu-hello", 1), ("emu-hello", 2)]
    mine = [line for line in ours if line["run_id"] == handle.run_id]
    attempts = [line for line in mine if line["message"] == "step attempt"]
    assert [(line["step"], line["outcome"]) for line in attempts] == [
        ("where#0", "succeeded"),
        ("where#1", "succeeded"),
    ]
    assert all(line["duration_ms"] >= 0 for line in attempts)

    _the_saved_queries_find_these_runs(text, handle.run_id, flaky.run_id, broken.run_id)

    # The scheduler function writes its own EMF lines: the stuck-runs alarm's metric.
    ticks = [
        line
        for line in _json_lines((tmp_path / "scheduler.log").read_text())
        if "_aws" in line and OVERDUE_RUNS in line
    ]
    assert ticks
    for line in ticks:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["service"]]
        assert {m["Name"] for m in directive["Metrics"]} == {OVERDUE_RUNS, DEAD_LETTERS}


def _the_saved_queries_find_these_runs(log: str, hello: str, flaky: str, broken: str) -> None:
    """Each saved Logs Insights query of the template, run over the worker's log lines."""
    queries = saved_queries()
    rows = rows_of(log.splitlines())

    timeline = run_query(queries["RunTimelineQuery"].replace("RUN_ID", hello), rows)
    assert [(row["message"], row["step"] or row["status"]) for row in timeline] == [
        ("step attempt", "where#0"),
        ("resume message processed", "SUSPENDED"),
        ("step attempt", "where#1"),
        ("resume message processed", "COMPLETED"),
    ]
    failed = run_query(queries["FailedRunsQuery"], rows)
    assert [(row["run_id"], row["task_id"]) for row in failed] == [(broken, "emu-broken")]
    assert failed[0]["error_type"]
    retries = run_query(queries["RetriesByStepQuery"], rows)
    assert [(r["task_id"], r["step"], r["retries"]) for r in retries] == [
        ("emu-flaky", "fails_once#0", 1)
    ]
    slowest = run_query(queries["SlowestStepsQuery"], rows)
    attempts = {(r["task_id"], r["step"]): r["attempts"] for r in slowest}
    assert attempts == {
        ("emu-hello", "where#0"): 1,
        ("emu-hello", "where#1"): 1,
        ("emu-flaky", "fails_once#0"): 2,
        ("emu-broken", "always_fails#0"): 1,
    }
    by_hops = {r["run_id"]: r["hops"] for r in run_query(queries["RunsByHopsQuery"], rows)}
    assert by_hops == {hello: 2, flaky: 2, broken: 1}
