"""Replay check: would the current task code still replay the runs in flight?

Before a deploy, :func:`check` replays the journal of every run still in
flight (and, within a window, of runs that recently ended) against the task
code loaded in this process, the way the worker replays it, and reports each
run whose replay would raise ``NonDeterminismError``: its task, the position
(scope, position, ``name#occurrence``) and both calls.

Nothing executes and nothing is written. The replay stops at the run's
frontier, the first call the journal does not hold (or a step whose next
attempt is due), before any step body could start; a write the engine would
make (the record of a composite call) is a frontier too; and the store the
check reads through refuses every write loudly (:class:`ReadOnlyRunStore`),
so a path this module missed fails the check rather than touching a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, cast

from durable_lambda.adapters.read_only import ReadOnlyRunStore, ReadOnlyStoreError
from durable_lambda.clock import SystemClock
from durable_lambda.context import TaskContext
from durable_lambda.effects import RunEffects, RunMetadata, bind, unbind
from durable_lambda.engine.children import ChildStart, ChildState, Started
from durable_lambda.engine.environment import Environment
from durable_lambda.engine.execution import Execution
from durable_lambda.engine.journal import (
    Call,
    EntryKind,
    EntryStatus,
    ErrorInfo,
    Journal,
    JournalEntry,
    call_key,
)
from durable_lambda.engine.outcome import Completed, Failed, Outcome, SuspendReason
from durable_lambda.engine.records import RunQuery, RunRecord
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import DurableLambdaError, NonDeterminismError, UnknownTaskError
from durable_lambda.ports import Clock, RunStore
from durable_lambda.task import TaskRegistry

#: Statuses of runs that will be replayed again: the ones a deploy can break.
IN_FLIGHT = (RunStatus.QUEUED, RunStatus.WAITING_FOR_SLOT, RunStatus.RUNNING, RunStatus.SUSPENDED)
#: Ended runs checked within the window: their histories show what the new code does.
ENDED = (RunStatus.COMPLETED, RunStatus.FAILED)
#: Step statuses whose replay would start the body again (a retry, an interrupted attempt).
_DUE = frozenset({EntryStatus.RETRYING, EntryStatus.STARTED})
#: Calls that only group other calls; the replay goes into them (their record is a write).
_CONTAINERS = frozenset({EntryKind.CONTEXT, EntryKind.BATCH})


class Verdict(StrEnum):
    """What the check found for one run."""

    OK = "ok"  # replays up to its frontier (or to its end) as recorded
    NON_DETERMINISTIC = "non_deterministic"  # the code calls something else than the journal
    UNKNOWN_TASK = "unknown_task"  # the run's task is not registered in the current code
    INVALID_PAYLOAD = "invalid_payload"  # the stored payload no longer validates
    ERROR = "error"  # the replay itself failed (a bug, or a write it would have made)

    @property
    def breaks(self) -> bool:
        """Whether a run with this verdict would fail after the deploy."""
        return self is not Verdict.OK


@dataclass(frozen=True, slots=True)
class RunCheck:
    """The check of one run.

    Attributes:
        run_id: The run.
        task_id: Its task.
        status: Its status when read.
        verdict: What the check found.
        replayed: Recorded calls the current code replayed before it stopped.
        frontier: The first call the journal does not hold (``None``: the task
            returned, or the check stopped before).
        scope: Where the replay diverged: the scope path (``""``: the task body).
        position: The position of the divergent call within its scope.
        recorded: The call the journal recorded there (``name#occurrence``).
        now: The call the current code makes there (``None``: it returns first).
        detail: The error message, for every verdict but OK.
    """

    run_id: str
    task_id: str
    status: RunStatus
    verdict: Verdict
    replayed: int = 0
    frontier: str | None = None
    scope: str | None = None
    position: int | None = None
    recorded: str | None = None
    now: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The check as JSON data."""
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "status": self.status.value,
            "verdict": self.verdict.value,
            "breaks": self.verdict.breaks,
            "replayed": self.replayed,
            "frontier": self.frontier,
            "scope": self.scope,
            "position": self.position,
            "recorded": self.recorded,
            "now": self.now,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every run checked, in the order read."""

    runs: tuple[RunCheck, ...]

    @property
    def broken(self) -> list[RunCheck]:
        """The runs the current code would break."""
        return [r for r in self.runs if r.verdict.breaks]

    @property
    def ok(self) -> bool:
        """True when no run would break."""
        return not self.broken

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data."""
        return {
            "ok": self.ok,
            "checked": len(self.runs),
            "broken": len(self.broken),
            "runs": [r.to_json() for r in self.runs],
        }


def check(
    store: RunStore,
    registry: TaskRegistry,
    *,
    clock: Clock | None = None,
    window: dt.timedelta = dt.timedelta(days=1),
    task_id: str | None = None,
    run_ids: Sequence[str] = (),
    limit: int = 1000,
) -> CheckReport:
    """Replay runs against the tasks of ``registry`` without executing or writing anything.

    Args:
        store: Where the runs are (read through :class:`ReadOnlyRunStore`).
        registry: The current code's tasks.
        clock: Now, to tell due waits from pending ones (default: the system clock).
        window: Runs that ended this long ago or less are checked too (zero: none).
        task_id: Check only this task's runs.
        run_ids: Check exactly these runs (the other filters are then ignored).
        limit: At most this many runs of each status.

    Returns:
        One :class:`RunCheck` per run.
    """
    reader = ReadOnlyRunStore(store)
    now = clock or SystemClock()
    runs = _runs_to_check(
        reader, now=now.now(), window=window, task_id=task_id, run_ids=run_ids, limit=limit
    )
    return CheckReport(tuple(check_run(reader, registry, run, now) for run in runs))


def _runs_to_check(
    store: RunStore,
    *,
    now: dt.datetime,
    window: dt.timedelta,
    task_id: str | None,
    run_ids: Sequence[str],
    limit: int,
) -> list[RunRecord]:
    if run_ids:
        found = store.get_runs(run_ids)
        missing = [rid for rid, run in zip(run_ids, found, strict=True) if run is None]
        if missing:
            raise DurableLambdaError(f"replay-check: no run {', '.join(map(repr, missing))}")
        return [run for run in found if run is not None]
    runs: list[RunRecord] = []
    for status in IN_FLIGHT:
        runs += store.list_runs(RunQuery(task_id=task_id, status=status, limit=limit))
    if window > dt.timedelta(0):
        since = now - window
        for status in ENDED:
            ended = store.list_runs(RunQuery(task_id=task_id, status=status, limit=limit))
            runs += [r for r in ended if (r.finished_at or r.updated_at) >= since]
    return runs


def check_run(store: RunStore, registry: TaskRegistry, run: RunRecord, clock: Clock) -> RunCheck:
    """Replay one run up to its frontier against the tasks of ``registry``.

    ``store`` must be read-only (:class:`ReadOnlyRunStore`): the replay may read
    child runs, and must write nothing.
    """
    base = RunCheck(run.run_id, run.task_id, run.status, Verdict.OK)
    try:
        task = registry.get(run.task_id)
    except UnknownTaskError as exc:
        return _with(base, Verdict.UNKNOWN_TASK, detail=str(exc))
    try:
        payload = task.decode_payload(run.payload)
    except DurableLambdaError as exc:
        return _with(base, Verdict.INVALID_PAYLOAD, detail=str(exc))
    journal = cast("FrontierJournal", FrontierJournal.of(store.load_journal(run.run_id)))
    effects = RunEffects.of(run)
    env = Environment(
        now=clock.now,
        remaining=lambda: 900.0,  # never consulted: no step executes
        record=_frontier_write,
        sleep=clock.sleep,
        children=_ReadOnlyChildren(store),
    )
    execution = Execution(
        run_id=run.run_id, attempt=run.attempt, journal=journal, env=env, task_retry=task.retry
    )
    journal.stop = lambda key: execution.suspend(SuspendReason.DEADLINE, None, f"frontier {key}")
    ctx = TaskContext(
        run_id=run.run_id,
        task_id=run.task_id,
        attempt=run.attempt,
        tags=run.tags,
        concurrency_key=run.concurrency_key,
        metadata=RunMetadata(effects),
    )
    bound = bind(effects)
    try:
        outcome: Outcome | None = execution.run(lambda: task.invoke(payload, ctx))
    except FrontierWriteError:
        outcome = None  # the engine would record progress here: the frontier
    except DurableLambdaError as exc:
        return _with(base, Verdict.ERROR, detail=str(exc))
    finally:
        unbind(bound)
    base = _with(base, Verdict.OK, replayed=execution.steps_replayed, frontier=journal.frontier)
    return _verdict(base, journal, outcome)


def _verdict(base: RunCheck, journal: FrontierJournal, outcome: Outcome | None) -> RunCheck:
    """The verdict of a replay that ended with ``outcome`` (``None``: at a write)."""
    diverged = journal.divergence
    if diverged is not None:
        # Raised at the call even if the task caught it: the worker would fail there too.
        return _nondeterministic(base, diverged)
    if isinstance(outcome, Failed) and outcome.reason == NonDeterminismError.__name__:
        # The task returned before calls the journal holds.
        missed = journal.unvisited()
        if missed:
            first = missed[0]
            error = NonDeterminismError(first.slot[1], first.key, None, scope=first.scope)
            return _nondeterministic(base, error)
    if isinstance(outcome, Completed | Failed) and journal.frontier is not None:
        return _with(base, Verdict.ERROR, detail=outcome_detail(outcome))
    return base


def outcome_detail(outcome: Outcome) -> str:
    """A one-line description of an unexpected outcome of a replay."""
    if isinstance(outcome, Failed):
        return f"replay failed: {outcome.error.type}: {outcome.error.message}"
    return f"replay ended unexpectedly: {type(outcome).__name__}"


def _nondeterministic(base: RunCheck, error: NonDeterminismError) -> RunCheck:
    return _with(
        base,
        Verdict.NON_DETERMINISTIC,
        scope=error.scope,
        position=error.position,
        recorded=error.expected,
        now=error.actual,
        detail=str(error),
    )


def _with(base: RunCheck, verdict: Verdict, **changes: Any) -> RunCheck:
    return replace(base, verdict=verdict, **changes)


class FrontierWriteError(ReadOnlyStoreError):
    """The replay reached a write the worker would make: progress starts here."""


def _frontier_write(entry: JournalEntry) -> None:
    raise FrontierWriteError(f"replay-check stops before recording {entry.key!r}")


@dataclass(slots=True)
class FrontierJournal(Journal):
    """A journal that stops the replay at the first call it does not hold.

    Attributes:
        stop: Called with the frontier call's key; raises the engine's stop
            signal (set once the execution exists).
        frontier: The key of the first call the journal did not hold.
        divergence: The first non-determinism the replay met, even if the task
            body caught it.
    """

    stop: Callable[[str], None] | None = None
    frontier: str | None = None
    divergence: NonDeterminismError | None = field(default=None)

    def next_call(self, scope: str, name: str, kind: EntryKind) -> Call:
        """As :meth:`Journal.next_call`, but a call beyond the journal stops the replay.

        Raises:
            NonDeterminismError: The journal holds another call at this position.
        """
        try:
            call = Journal.next_call(self, scope, name, kind)
        except NonDeterminismError as exc:
            if self.divergence is None:
                self.divergence = exc
            raise
        recorded = call.recorded
        if recorded is None and kind in _CONTAINERS:
            # Entering a child context or a batch starts nothing by itself: its
            # calls, already recorded or not, come through here one by one.
            return call
        due = recorded is not None and recorded.kind is EntryKind.STEP and recorded.status in _DUE
        if recorded is None or due:
            key = call_key(scope, name, call.occurrence)
            if self.frontier is None:
                self.frontier = key
            if self.stop is None:
                raise ReadOnlyStoreError(f"replay-check reached {key!r} with no stop wired")
            self.stop(key)
        return call


class _ReadOnlyChildren:
    """Child runs as a replay sees them: read, never started."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def start(self, starts: Sequence[ChildStart], keys: Sequence[str]) -> Started:
        raise ReadOnlyStoreError(
            f"replay-check would start {len(starts)} child run(s) under {list(keys)[:1]}"
        )

    def states(self, run_ids: Sequence[str]) -> list[ChildState]:
        states = []
        for run_id, run in zip(run_ids, self.store.get_runs(run_ids), strict=True):
            if run is None:
                missing = ErrorInfo("RunNotFoundError", f"no run {run_id!r}")
                states.append(ChildState(run_id, RunStatus.FAILED, error=missing))
                continue
            states.append(ChildState(run_id, run.status, run.output, run.error))
        return states
