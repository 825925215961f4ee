"""Reading the ledger written by ``ledger_tasks`` and checking journals against it."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from durable_lambda.engine.journal import EntryKind, JournalEntry


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a step body: its start line and, unless it was cut short, its end line."""

    run: str
    step: str
    pid: int
    start: float
    end: float | None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.end is not None


def executions(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[Execution]]:
    """Step body executions by ``(run, step)``, in start order.

    A ``start`` is paired with the next ``end`` of the same run, step and
    process; a start with no such end was cut short (its process died in the body).
    """
    open_starts: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    done: dict[tuple[str, str], list[Execution]] = defaultdict(list)
    for line in lines:
        key = (line["run"], line["step"], line["pid"])
        if line["event"] == "start":
            open_starts[key].append(line)
            continue
        start = open_starts[key].pop(0)
        done[line["run"], line["step"]].append(
            Execution(
                line["run"], line["step"], line["pid"], start["t"], line["t"], line.get("error")
            )
        )
    for (run, step, pid), starts in open_starts.items():
        done[run, step] += [Execution(run, step, pid, start["t"], None) for start in starts]
    return {key: sorted(found, key=lambda e: e.start) for key, found in done.items()}


def last_line_at(lines: list[dict[str, Any]]) -> dict[int, float]:
    """The time of each process's last ledger line."""
    last: dict[int, float] = {}
    for line in lines:
        last[line["pid"]] = max(last.get(line["pid"], 0.0), line["t"])
    return last


def unexplained_reexecutions(lines: list[dict[str, Any]]) -> list[str]:
    """Step bodies that ran again although the process of their earlier run lived on.

    A body may run twice only when a crash hit between its side effect and
    its record. Here the only crashes are SIGKILLs of worker processes, so
    every execution but the last of a step must be one whose process never
    wrote to the ledger again after it (it died), and the last must have
    finished. Returns a description of each violation.
    """
    last = last_line_at(lines)
    problems = []
    for (run, step), found in executions(lines).items():
        *earlier, final = found
        if not final.finished:
            problems.append(f"{run} {step}: its last execution (pid {final.pid}) never ended")
        for execution in earlier:
            ended = execution.end if execution.end is not None else execution.start
            if last[execution.pid] > ended:
                problems.append(
                    f"{run} {step}: ran again after pid {execution.pid} executed it, "
                    "yet that process lived on"
                )
    return problems


def overlapping_executions(lines: list[dict[str, Any]]) -> list[str]:
    """Pairs of executions of the same step whose [start, end] intervals overlap."""
    problems = []
    for (run, step), found in executions(lines).items():
        for first, second in itertools.pairwise(found):
            first_end = first.end if first.end is not None else float("inf")
            if second.start < first_end:
                problems.append(f"{run} {step}: pid {first.pid} and pid {second.pid} overlap")
    return problems


def journal_problems(journal: list[JournalEntry]) -> list[str]:
    """Journal entries recorded twice (same identity) or positions missing."""
    problems = []
    positions = [entry.seq for entry in journal]
    if positions != list(range(len(journal))):
        problems.append(f"positions are not contiguous from 0: {positions}")
    keys = [entry.key for entry in journal]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        problems.append(f"recorded more than once: {duplicated}")
    return problems


def step_entries(journal: list[JournalEntry]) -> list[JournalEntry]:
    """The journal's step entries (waits left out)."""
    return [entry for entry in journal if entry.kind is EntryKind.STEP]
