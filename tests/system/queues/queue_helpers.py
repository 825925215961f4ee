"""Reading the queue tests' ledger, and small waits on an emulated stack.

Kept apart from ``conftest.py`` (imported as plain ``conftest``, a name other
test folders use too) so the tests can import it by a unique name.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from durable_lambda.client import Client
from durable_lambda.local.stack import EmulatedStack


@dataclass(frozen=True, slots=True)
class Interval:
    """One execution of a step body, from its start line to its end (or its process's death).

    Attributes:
        run: The run.
        step: The step key.
        pid: The worker process.
        start: Its start line's time.
        end: Its end line's time, or the bound put on a killed execution.
        killed: No end line: the process died inside the body.
        key: The run's concurrency key.
        label: The test's name for the run.
    """

    run: str
    step: str
    pid: int
    start: float
    end: float
    killed: bool
    key: str | None
    label: str | None


def intervals(lines: list[dict[str, Any]], killed_bound: float) -> list[Interval]:
    """Step body executions as time intervals.

    A ``start`` is paired with the next ``end`` of the same run, step and process.
    A start with no such end was cut short: its process was SIGKILLed inside the
    body. It is taken to last until the earliest of

    - ``start + killed_bound`` (pass the worker's timeout): the pool kills an
      invocation at its timeout, and the invocation began before the step did,
      so the process was dead by then whatever killed it;
    - the next ledger line of the same run: a later execution of a run begins
      only after its lease expired, and the lease outlives the dead invocation.

    Either bound is still inside the time the dead run's concurrency unit stays
    held: that unit's expiry is the lease expiry, ``deadline + LEASE_GRACE``
    (5 s), later than both. So in a correct system the run truly occupies a
    unit for the whole bounded interval, and counting it there can never make a
    limit look exceeded; ending it earlier (at the start line) could hide an
    overlap with a step that started while the dead process still ran.
    """
    by_run: dict[str, list[float]] = defaultdict(list)
    for line in lines:
        by_run[line["run"]].append(line["t"])
    for times in by_run.values():
        times.sort()
    open_starts: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    found: list[Interval] = []
    for line in lines:
        ident = (line["run"], line["step"], line["pid"])
        if line["event"] == "start":
            open_starts[ident].append(line)
            continue
        start = open_starts[ident].pop(0)
        found.append(_interval(start, line["t"], killed=False))
    for starts in open_starts.values():
        for start in starts:
            later = [t for t in by_run[start["run"]] if t > start["t"]]
            end = min([start["t"] + killed_bound, *later[:1]])
            found.append(_interval(start, end, killed=True))
    return sorted(found, key=lambda i: i.start)


def _interval(start: dict[str, Any], end: float, *, killed: bool) -> Interval:
    return Interval(
        run=start["run"],
        step=start["step"],
        pid=start["pid"],
        start=start["t"],
        end=end,
        killed=killed,
        key=start.get("key"),
        label=start.get("label"),
    )


def max_concurrency(found: Iterable[Interval]) -> tuple[int, float]:
    """The most intervals open at once, and when that was first reached.

    Intervals are half-open ``[start, end)``: at equal times an end is counted
    before a start (a hand-off's next start always follows its holder's end).
    """
    events = sorted(
        [(i.start, 1) for i in found] + [(i.end, -1) for i in found],
        key=lambda e: (e[0], e[1]),
    )
    now = peak = 0
    when = 0.0
    for t, delta in events:
        now += delta
        if now > peak:
            peak, when = now, t
    return peak, when


def first_starts(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Each run's first step start."""
    first: dict[str, float] = {}
    for line in lines:
        if line["event"] == "start" and line["run"] not in first:
            first[line["run"]] = line["t"]
    return first


def flow_client(stack: EmulatedStack) -> Client:
    """The stack's client: built like ``lambda_entry``'s, so it controls queues."""
    return stack.client


def wait_until(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    """``condition()``'s first truthy value, polling; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
