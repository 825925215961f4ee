"""Queue benchmarks on the emulated stack (moto server, subprocess workers, SQS pollers).

- ``slot_handoff_ms``: median, over 20 hand-offs on a queue of limit 1, of the
  time from the holder's last step end (ledger) to the next parked run's first
  step start: the holder's final checkpoint, the release, the grant, the
  parked run's message through SQS, its lease, its unit and its journal.
  All 20 runs are parked behind a gated blocker before the first hand-off, so
  every hand-off is a release handing its unit to a parked run (the
  scheduler ticks only every 60 s, as on AWS: it plays no part).
- ``max_concurrency_over_limit``: the most step bodies running at once (ledger
  intervals) minus the limit, over 50 runs on a queue of limit 3 (target 0).

Run: ``make bench`` or ``.venv/bin/python benchmarks/queues.py``.
Prints one JSON object per line: {"figure": NAME, "value": NUMBER, "unit": UNIT}.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, progress

from durable_lambda import Queue, step, task
from durable_lambda.engine.execution import current_step
from durable_lambda.task import TaskRegistry

HERE = Path(__file__).resolve().parent
LEDGER_ENV = "DL_BENCH_QUEUE_LEDGER"

HANDOFFS = 20
RUNS = 50
LIMIT = 3
TIMEOUT = 10.0

#: Run as a script, this file is imported again as ``queues`` by the emulated
#: stack (and by its workers): only that copy registers in the default registry.
_EMULATED = TaskRegistry() if __name__ == "__main__" else None


def _append(event: str) -> None:
    info = current_step()
    assert info is not None
    line = {"run": info.run_id, "event": event, "t": time.time()}
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@step
def hold(gate: str) -> None:
    """Hold the unit until the file ``gate`` exists."""
    _append("start")
    deadline = time.monotonic() + TIMEOUT / 2
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    _append("end")


@step
def work(seconds: float) -> None:
    _append("start")
    time.sleep(seconds)
    _append("end")


@task(id="bench-q-single", queue=Queue("bench-single", concurrency_limit=1), registry=_EMULATED)
async def single(payload: dict[str, Any]) -> None:
    if payload.get("gate"):
        await hold(payload["gate"])
    await work(payload["seconds"])


@task(
    id="bench-q-limited", queue=Queue("bench-limited", concurrency_limit=LIMIT), registry=_EMULATED
)
async def limited(payload: dict[str, Any]) -> None:
    await work(payload["seconds"])
    await work(payload["seconds"])


def _ledger(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line]
        if path.exists()
        else []
    )


def _wait(stack: Any, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending:
        pending = [r for r in pending if not stack.client.get_run(r).status.is_terminal]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} runs unfinished after {timeout:g} s")
        time.sleep(0.2)


def _spans(lines: list[dict[str, Any]], run_ids: list[str]) -> dict[str, tuple[float, float]]:
    """Each run's first step start and last step end."""
    spans: dict[str, tuple[float, float]] = {}
    for line in lines:
        if line["run"] not in run_ids:
            continue
        first, last = spans.get(line["run"], (line["t"], line["t"]))
        spans[line["run"]] = (min(first, line["t"]), max(last, line["t"]))
    return spans


def handoffs_ms(stack: Any, ledger: Path, workdir: Path) -> list[float]:
    """Release-to-start latency of each hand-off on a queue of limit 1."""
    from durable_lambda.engine.state import RunStatus  # noqa: PLC0415

    gate = workdir / "gate"
    blocker = stack.trigger("bench-q-single", {"gate": str(gate), "seconds": 0.0}).run_id
    while not any(line["run"] == blocker for line in _ledger(ledger)):
        time.sleep(0.05)
    parked = [stack.trigger("bench-q-single", {"seconds": 0.02}).run_id for _ in range(HANDOFFS)]
    while any(stack.client.get_run(r).status is not RunStatus.WAITING_FOR_SLOT for r in parked):
        time.sleep(0.1)
    progress(f"{HANDOFFS} runs parked behind the blocker; opening the gate")
    gate.touch()
    _wait(stack, [blocker, *parked], timeout=120)
    spans = _spans(_ledger(ledger), [blocker, *parked])
    order = sorted(spans, key=lambda r: spans[r][0])
    return [(spans[nxt][0] - spans[prev][1]) * 1000 for prev, nxt in itertools.pairwise(order)]


def max_concurrency(ledger: Path, run_ids: list[str]) -> int:
    """The most step bodies between their start and end lines at once."""
    events = sorted(
        (line["t"], 1 if line["event"] == "start" else -1)
        for line in _ledger(ledger)
        if line["run"] in run_ids
    )
    now = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        now += delta
        peak = max(peak, now)
    return peak


def main() -> None:
    from durable_lambda.local.stack import EmulatedStack  # noqa: PLC0415
    from durable_lambda.settings import Settings  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    ledger = workdir / "ledger.jsonl"
    name = f"bench-q-{uuid.uuid4().hex[:8]}"
    progress("starting the emulated stack")
    with EmulatedStack(
        Settings(table_name=name, bucket_name=name, short_wait_seconds=0),
        task_modules=["queues"],
        pythonpath=[str(HERE)],
        env={LEDGER_ENV: str(ledger)},
        timeout=TIMEOUT,
        reserved_concurrency=6,
        visibility_timeout=30,
        scheduler_interval=60.0,
        batch_size=1,
        log_dir=workdir,
    ) as stack:
        stack.worker.prewarm(6)
        progress(f"slot hand-off: {HANDOFFS} hand-offs on a queue of limit 1")
        latencies = handoffs_ms(stack, ledger, workdir)
        assert len(latencies) == HANDOFFS, latencies
        emit(
            "slot_handoff_ms",
            statistics.median(latencies),
            "ms",
            p90=round(statistics.quantiles(latencies, n=10)[-1], 1),
            max=round(max(latencies), 1),
            handoffs=len(latencies),
            target_median_below=1000,
        )

        progress(f"concurrency: {RUNS} runs on a queue of limit {LIMIT}")
        ids = [stack.trigger("bench-q-limited", {"seconds": 0.1}).run_id for _ in range(RUNS)]
        started = time.monotonic()
        _wait(stack, ids, timeout=300)
        elapsed = time.monotonic() - started
        peak = max_concurrency(ledger, ids)
        emit(
            "max_concurrency_over_limit",
            peak - LIMIT,
            "runs",
            max_concurrency=peak,
            limit=LIMIT,
            runs=RUNS,
            runs_per_s=round(RUNS / elapsed, 2),
            target=0,
        )
    progress(f"logs and ledger in {workdir}")


if __name__ == "__main__":
    main()
