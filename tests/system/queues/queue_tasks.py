"""Tasks for the queue tests. Every step body writes to a ledger file.

The workers are separate processes (and may be SIGKILLed), so what a step
body did is recorded outside them: one JSON line per event, appended with one
``write`` to a file opened in append mode, so a kill leaves only whole lines.
The file's path comes from ``DL_TEST_LEDGER`` (the stack's ``env=``).

Each line is ``{"run", "step", "event": "start" | "end", "t", "pid", "key", "label"}``:
``key`` is the run's concurrency key, ``label`` a name the test gave the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ledger import append

from durable_lambda import Queue, RateLimit, TaskContext, step, task

#: The limits the tests assert against, in one place.
LIMITED = Queue("q-limited", concurrency_limit=3)
KEYED = Queue("q-keyed", concurrency_limit=2)
SINGLE = Queue("q-single", concurrency_limit=1)
ELASTIC = Queue("q-elastic", concurrency_limit=2)
RATED = Queue("q-rated", rate_limit=RateLimit(5, 10))

#: A gated step gives up waiting after this long (well inside the worker timeout
#: the gated tests use), so a test that forgets to open its gate still ends.
GATE_MAX_WAIT = 20.0


@step
def work(seconds: float, key: str | None, label: str) -> int:
    """Sleep ``seconds`` between a start and an end line."""
    append("start", key=key, label=label)
    time.sleep(seconds)
    append("end", key=key, label=label)
    return os.getpid()


@step
def gated(gate: str, key: str | None, label: str) -> bool:
    """Hold until the file ``gate`` exists (at most ``GATE_MAX_WAIT`` seconds)."""
    append("start", key=key, label=label)
    deadline = time.monotonic() + GATE_MAX_WAIT
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    opened = Path(gate).exists()
    append("end", key=key, label=label)
    return opened


async def _body(payload: dict[str, Any], ctx: TaskContext) -> str:
    label = payload.get("label", ctx.run_id)
    if payload.get("gate"):
        await gated(payload["gate"], ctx.concurrency_key, label)
    for _ in range(payload.get("steps", 1)):
        await work(payload.get("seconds", 0.0), ctx.concurrency_key, label)
    return label


@task(id="q-limited", queue=LIMITED)
async def limited(payload: dict[str, Any], ctx: TaskContext) -> str:
    """``steps`` steps of ``seconds`` on a queue of limit 3."""
    return await _body(payload, ctx)


@task(id="q-keyed", queue=KEYED)
async def keyed(payload: dict[str, Any], ctx: TaskContext) -> str:
    """Limit 2 per concurrency key."""
    return await _body(payload, ctx)


@task(id="q-single", queue=SINGLE)
async def single(payload: dict[str, Any], ctx: TaskContext) -> str:
    """One at a time; ``gate`` holds the slot until a file appears."""
    return await _body(payload, ctx)


@task(id="q-elastic", queue=ELASTIC)
async def elastic(payload: dict[str, Any], ctx: TaskContext) -> str:
    """Limit 2 in code; the tests raise it, pause and resume the queue."""
    return await _body(payload, ctx)


@task(id="q-rated", queue=RATED)
async def rated(payload: dict[str, Any], ctx: TaskContext) -> str:
    """At most 5 starts per 10 s."""
    return await _body(payload, ctx)
