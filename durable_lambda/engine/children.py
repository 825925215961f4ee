"""Child tasks as journaled calls: trigger once, wait without running, replay their results. Pure.

A child trigger is one journal entry. Its children's idempotency keys are
derived from the parent's run id and the call's identity, so a trigger
re-executed after a crash between the create and its record finds the same
children instead of creating others. A wait on children suspends the parent
(no Lambda time, its concurrency unit given back) with ``waiting_children``
set and a far fallback wake time; each child's end nudges the parent. The
parent keeps the set of running children it waits on: each nudge takes its
child out once, and only when so few are left that a wait may have ended does
a nudge take the parent, which reads the children's states again and either
records their results (replay returns them without reading anything) or
suspends once more. A batch of N children costs one read of them, not N.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from durable_lambda.engine.calls import entry_of
from durable_lambda.engine.journal import Call, EntryKind, EntryStatus, ErrorInfo, call_key
from durable_lambda.engine.outcome import SuspendReason
from durable_lambda.engine.scopes import current_scope
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ConfigurationError, TerminalError

if TYPE_CHECKING:
    from durable_lambda.engine.execution import Execution

#: The most children one call may trigger (one journal entry holds their ids).
MAX_CHILDREN_PER_CALL = 1_000


@dataclass(frozen=True, slots=True)
class ChildStart:
    """One child to trigger; the engine passes it through to :class:`Children` untouched.

    Attributes:
        task: The child's task (opaque to the engine).
        payload: Its payload, already validated.
        options: Its trigger options.
    """

    task: Any
    payload: Any
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChildState:
    """A child run as its parent sees it.

    Attributes:
        run_id: The child run.
        status: Where it is.
        output: Its output as JSON text once completed.
        error: What failed it, if it failed.
    """

    run_id: str
    status: RunStatus
    output: str | None = None
    error: ErrorInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """The state as JSON data, for the journal."""
        error = None if self.error is None else [self.error.type, self.error.message]
        return {
            "run": self.run_id,
            "status": self.status.value,
            "output": self.output,
            "error": error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChildState:
        """The state recorded by :meth:`to_json`."""
        error = data.get("error")
        return cls(
            run_id=str(data["run"]),
            status=RunStatus(data["status"]),
            output=data.get("output"),
            error=None if error is None else ErrorInfo(str(error[0]), str(error[1])),
        )


@dataclass(frozen=True, slots=True)
class Started:
    """Children a trigger started: their run ids in order, and whether all are new.

    Children found under their idempotency keys (a trigger re-executed after
    a crash) may already have ended; new ones cannot have.
    """

    run_ids: list[str]
    fresh: bool


class Children(Protocol):
    """What the engine needs to start children and read them (the worker provides it)."""

    def start(self, starts: Sequence[ChildStart], keys: Sequence[str]) -> Started:
        """Trigger each child with its idempotency key; their run ids in order.

        Raises:
            TerminalError: The child may not be triggered (e.g. the depth limit).
        """
        ...

    def states(self, run_ids: Sequence[str]) -> list[ChildState]:
        """The children's states, in the order of ``run_ids``."""
        ...


def awaited_count(waits: Sequence[frozenset[str]]) -> tuple[frozenset[str], int | None]:
    """The running children a suspension counts, and how few may be left before a nudge wakes it.

    ``waits``: for each wait on children, those still running. No wait goes on
    before all its running children end, so none can before as many ends as
    the smallest wait has: until then nudges are counted and take nothing. A
    lone child needs no count (``None``): its nudge takes the run at once.
    """
    awaited = frozenset[str]().union(*waits)
    if len(awaited) <= 1:
        return frozenset(), None
    return awaited, len(awaited) - min(len(wait) for wait in waits)


def trigger_children(execution: Execution, name: str, starts: Sequence[ChildStart]) -> list[str]:
    """Trigger ``starts`` as the journaled call ``name``; replay returns the recorded run ids."""
    call = _call(execution, name, starts, EntryKind.CHILD)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.steps_replayed += 1
        return list(json.loads(recorded.result or "{}")["runs"])
    execution.check_not_stopping()
    now = execution.env.now()
    run_ids = _start(execution, call, name, starts).run_ids
    entry = entry_of(
        call,
        name,
        EntryKind.CHILD,
        EntryStatus.COMPLETED,
        1,
        result=json.dumps({"runs": run_ids}),
        started_at=now,
        ended_at=execution.env.now(),
    )
    execution.persist(entry)
    return run_ids


async def wait_children(
    execution: Execution, name: str, starts: Sequence[ChildStart]
) -> list[ChildState]:
    """Trigger ``starts`` as the call ``name`` (once) and return their final states in order."""
    call = _call(execution, name, starts, EntryKind.CHILD_WAIT)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.steps_replayed += 1
        data = json.loads(recorded.result or "{}")
        return [ChildState.from_json(d) for d in data["results"]]
    started = execution.env.now()
    fresh = False
    if recorded is not None:
        run_ids = list(json.loads(recorded.result or "{}")["runs"])
        started = recorded.started_at or started
    else:
        execution.check_not_stopping()
        launched = _start(execution, call, name, starts)
        run_ids, fresh = launched.run_ids, launched.fresh
        waiting = entry_of(
            call,
            name,
            EntryKind.CHILD_WAIT,
            EntryStatus.WAITING,
            1,
            result=json.dumps({"runs": run_ids}),
            started_at=started,
        )
        execution.pend(waiting)  # written with the suspension's checkpoint: no request of its own
    # Children created just now cannot have ended: suspend without reading them.
    states = [] if fresh else _children(execution).states(run_ids)
    if not run_ids or (states and all(s.status.is_terminal for s in states)):
        done = entry_of(
            call,
            name,
            EntryKind.CHILD_WAIT,
            EntryStatus.COMPLETED,
            1,
            result=json.dumps({"runs": run_ids, "results": [s.to_json() for s in states]}),
            started_at=started,
            ended_at=execution.env.now(),
        )
        # Written with the invocation's next checkpoint, not a request of its own:
        # the children's final states never change, so a replay that lost this
        # record reads the same states again.
        execution.pend(done)
        return states
    fallback = execution.env.now() + dt.timedelta(seconds=execution.env.children_fallback)
    ended = {s.run_id for s in states if s.status.is_terminal}
    running = frozenset(r for r in run_ids if r not in ended)
    key = call_key(call.scope, name, call.occurrence)
    execution.suspend(
        SuspendReason.CHILDREN, fallback, f"{key}: {len(running)} children running", running
    )
    raise AssertionError  # pragma: no cover - suspend always raises


def _call(execution: Execution, name: str, starts: Sequence[ChildStart], kind: EntryKind) -> Call:
    if not name or "/" in name or "#" in name:
        raise ConfigurationError(
            f"child trigger name {name!r} must be non-empty, without '/' or '#'"
        )
    if len(starts) > MAX_CHILDREN_PER_CALL:
        raise ConfigurationError(
            f"{name}: at most {MAX_CHILDREN_PER_CALL} children per call, got {len(starts)}"
        )
    return execution.journal.next_call(current_scope(), name, kind)


def _children(execution: Execution) -> Children:
    children = execution.env.children
    if children is None:
        raise ConfigurationError("child tasks need a worker that can trigger them (no launcher)")
    return children


def _start(execution: Execution, call: Call, name: str, starts: Sequence[ChildStart]) -> Started:
    """Trigger the children under keys derived from the call's identity."""
    key = f"{execution.run_id}:{call_key(call.scope, name, call.occurrence)}"
    keys = [f"{key}:{i}" for i in range(len(starts))]
    try:
        return _children(execution).start(starts, keys)
    except TerminalError:
        raise  # the trigger's own error (depth limit, bad option): raised at the call
    except Exception as exc:
        execution.fail_store(exc)
        raise  # pragma: no cover - fail_store always raises
