"""Tasks for the reliability tests. Every step body writes to a ledger file.

The workers are separate processes (and may be SIGKILLed), so what a step
body did is recorded outside them: one JSON line per event, appended with a
single ``write`` to a file opened in append mode, so a kill leaves only whole
lines. The file's path comes from the ``DL_TEST_LEDGER`` environment
variable (the stack's ``env=``; ``monkeypatch.setenv`` for in-process workers).

Each line is ``{"run", "step", "event": "start" | "end", "t", "pid"}``; a
failing attempt's ``end`` line also carries ``"error"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ledger import LEDGER_ENV, append

from durable_lambda import Queue, RetryPolicy, TaskContext, step, task, wait
from durable_lambda.engine.execution import current_step
from durable_lambda.services import default_client
from durable_lambda.task import TaskRegistry

#: Tasks no worker knows: the worker imports this module, but these register here.
UNREGISTERED = TaskRegistry()


def starts_so_far() -> int:
    """How many times this step's body has started in this run (this start included)."""
    info = current_step()
    assert info is not None
    count = 0
    with Path(os.environ[LEDGER_ENV]).open() as ledger:
        for raw in ledger:
            line = json.loads(raw)
            if line["run"] == info.run_id and line["step"] == info.key and line["event"] == "start":
                count += 1
    return count


def value_of(seed: str, index: int) -> str:
    """A deterministic step result (the same for the same payload, whoever computes it)."""
    return hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:12]


@step
def work(seconds: float, seed: str, index: int) -> dict[str, Any]:
    """Sleep ``seconds`` between a start and an end line; return a value and the pid."""
    append("start")
    time.sleep(seconds)
    append("end")
    return {"value": value_of(seed, index), "pid": os.getpid()}


@step(expected_duration=60.0)
def one_per_invocation(index: int) -> int:
    """A step said to take longer than an invocation can give, so each gets its own."""
    append("start")
    append("end")
    return index


@step
def stamp() -> float:
    """Record when it ran: the first thing a resumed invocation executes."""
    append("start")
    started = time.time()
    append("end")
    return started


@step(retry=RetryPolicy(max_attempts=3, factor=2, min_timeout=1, max_timeout=10, randomize=False))
def flaky(fail_times: int) -> int:
    """Fail the first ``fail_times`` attempts (counted in the ledger), then succeed."""
    append("start")
    attempt = starts_so_far()
    if attempt <= fail_times:
        append("end", error="flaky")
        raise ConnectionError(f"flaky dependency refused attempt {attempt}")
    append("end")
    return attempt


@step(retry=RetryPolicy(max_attempts=2, min_timeout=1, randomize=False))
def always_declined(card: str) -> None:
    """Fail every attempt."""
    append("start")
    append("end", error="declined")
    raise ValueError(f"card {card} declined by the issuer")


@task(id="ledger-steps")
async def many_steps(payload: dict[str, Any], ctx: TaskContext) -> list[str]:
    """``steps`` steps of ``seconds`` each; a suspending wait after step ``wait_after``."""
    results = []
    for index in range(payload["steps"]):
        if index == payload.get("wait_after"):
            await wait.for_(seconds=payload.get("wait_seconds", 1))
        result = await work(payload["seconds"], payload.get("seed", ctx.run_id), index)
        results.append(result["value"])
    return results


@task(id="ledger-wait")
async def wait_between(payload: dict[str, Any]) -> dict[str, float]:
    """A step, a wait of ``seconds``, a step."""
    before = await stamp()
    await wait.for_(seconds=payload["seconds"])
    after = await stamp()
    return {"before": before, "after": after}


@task(id="ledger-chain")
async def chain(payload: dict[str, Any]) -> int:
    """``steps`` steps, one per invocation."""
    total = 0
    for index in range(payload["steps"]):
        total += await one_per_invocation(index)
    return total


@task(id="ledger-flaky")
async def flaky_then_ok(payload: dict[str, Any]) -> int:
    """A step that fails ``fail_times`` times before it succeeds."""
    return await flaky(payload["fail_times"])


@task(id="ledger-declined")
async def declined(payload: dict[str, Any]) -> str:
    """A step that fails every attempt."""
    await always_declined(payload["card"])
    return "charged"


@task(id="ledger-quick")
async def quick(payload: dict[str, Any], ctx: TaskContext) -> str:
    """One short step."""
    result = await work(0.0, ctx.run_id, 0)
    return f"{payload['name']}:{result['value']}"


@task(id="ledger-unregistered", registry=UNREGISTERED)
async def unregistered(payload: dict[str, Any]) -> str:
    """Triggered by the tests through its ``Task`` object; no worker can run it."""
    return str(payload)


# -- at_most_once: a body that SIGKILLs its own worker process -------------------------------

#: The ``retry_on`` predicate of ``wire_retried`` appends each error type it is
#: asked about here (the ledger's path plus this suffix), in the worker process.
DECISIONS_SUFFIX = ".decisions"


def _noted(error: BaseException) -> bool:
    """Retry everything, noting what the policy was asked about (one whole-line write)."""
    fd = os.open(
        os.environ[LEDGER_ENV] + DECISIONS_SUFFIX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )
    try:
        os.write(fd, f"{type(error).__name__}\n".encode())
    finally:
        os.close(fd)
    return True


def _killed_on_first_start() -> None:
    """Start a ledger execution; on the step's first start, SIGKILL this worker process."""
    append("start")
    if starts_so_far() == 1:
        os.kill(os.getpid(), signal.SIGKILL)


@step(
    semantics="at_most_once",
    retry=RetryPolicy(max_attempts=2, min_timeout=1, randomize=False, retry_on=_noted),
)
def wire_retried(amount: int) -> int:
    """Killed in its first attempt; the policy allows a second."""
    _killed_on_first_start()
    append("end")
    return amount


@step(semantics="at_most_once", retry=RetryPolicy(max_attempts=1))
def wire_once(amount: int) -> int:
    """Killed in its first attempt; no retry."""
    _killed_on_first_start()
    append("end")
    return amount


@step(
    semantics="at_most_once",
    retry=RetryPolicy(max_attempts=3, min_timeout=1, randomize=False, retry_on=(ConnectionError,)),
)
def wire_filtered(amount: int) -> int:
    """Killed in its first attempt; the policy retries only ConnectionError."""
    _killed_on_first_start()
    append("end")
    return amount


WIRES = {"retried": wire_retried, "once": wire_once, "filtered": wire_filtered}


@task(id="ledger-at-most-once")
async def at_most_once(payload: dict[str, Any]) -> int:
    """One ``at_most_once`` step (``payload["wire"]`` picks which) whose body kills its worker."""
    return await WIRES[payload["wire"]](payload["amount"])


#: The queue of the child-task kill test: a parent and its children share it.
KIDS = Queue("ledger-kids", concurrency_limit=3)


@step
def held_work(seconds: float, seed: str) -> dict[str, Any]:
    """Like ``work``, and records the queue's counter as the body saw it.

    The ``start`` line carries the counter's holders read from the store while
    the body runs: the test checks from that recorded fact that every body ran
    while its run held one of at most ``KIDS.concurrency_limit`` units.
    """
    state = default_client().queue_state(KIDS.name)
    append("start", holders=sorted(h.run_id for h in state.holders))
    time.sleep(seconds)
    append("end")
    return {"value": value_of(seed, 0), "pid": os.getpid()}


@task(id="ledger-kid", queue=KIDS)
async def kid(payload: dict[str, Any]) -> str:
    """One step on the limited queue; its output is a value derived from its seed."""
    return str((await held_work(payload["seconds"], payload["seed"]))["value"])


@task(id="ledger-parent", queue=KIDS)
async def parent_of_kids(payload: dict[str, Any]) -> list[str]:
    """Triggers ``children`` kids on its own queue and waits for them all."""
    kids = [
        {"seed": f"{payload['seed']}-{i}", "seconds": payload["seconds"]}
        for i in range(payload["children"])
    ]
    results = await kid.batch_trigger_and_wait(kids, name="kids")
    return [result.unwrap() for result in results]
