"""What a run looks like from outside: the models the HTTP API and ``runs`` both return.

Built from stored records only (no task code): a process that never imported
the task reads its runs the same way. Values (payload, output, step results)
are JSON; above :data:`REF_THRESHOLD` bytes they come by reference (size and
content hash) unless asked for with ``include_values``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from durable_lambda.engine.journal import EntryKind, ErrorInfo, JournalEntry
from durable_lambda.engine.records import EventKind, RunRecord, TimelineEvent
from durable_lambda.engine.state import RunStatus

if TYPE_CHECKING:
    from durable_lambda.engine.tokens import TokenInfo

__all__ = [
    "REF_THRESHOLD",
    "ErrorView",
    "RunDetail",
    "RunPage",
    "RunSummary",
    "TimelineEntry",
    "ValueView",
    "run_detail",
    "run_summary",
    "token_ids",
]

#: Values above this many bytes (encoded) are returned by reference unless asked for.
REF_THRESHOLD = 4 * 1024


class ValueView(BaseModel):
    """A stored JSON value: inline, or by reference (``value`` absent) with its size and hash.

    Attributes:
        size: Its encoded size in bytes.
        sha256: The hash of its encoded form (``ref`` to compare or fetch it by).
        value: The value itself, when inline.
        inline: Whether ``value`` is given.
    """

    model_config = ConfigDict(frozen=True)

    size: int
    sha256: str
    inline: bool
    value: Any = None


class ErrorView(BaseModel):
    """A recorded error."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    traceback: str = ""


class TimelineEntry(BaseModel):
    """One line of a run's timeline: a journal entry (step, wait, child...) or an event.

    Attributes:
        kind: ``step``, ``wait``, ``context``, ``batch``, ``child``, ``child_wait``,
            or an event (``invocation``, ``slot_wait``, ``triggered``, ``suspended``...).
        name: The call's name (journal entries), else the event kind.
        scope: The scope the call ran in (``""``: the task body).
        status: The entry's status (journal entries).
        attempts: Attempts made (steps).
        started_at: When it started.
        ended_at: When it ended (``None``: not yet, or an instant).
        duration_ms: ``ended_at - started_at`` in milliseconds.
        detail: A short description (events; never a payload).
        delay_seconds: The delay of a scheduled retry or suspension.
        result: A step's result.
        error: A step's last error.
        children: Child run ids (``child`` and ``child_wait`` entries).
        token_id: The wait token (``token``: its creation, spanning to its
            resolution; ``token_wait``: the run waiting on it).
        token_status: The token's ``PENDING``, ``COMPLETED``, ``FAILED`` or
            ``TIMED_OUT`` (``detail`` then says ``timeout`` or ``heartbeat``).
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    scope: str = ""
    status: str | None = None
    attempts: int | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    duration_ms: float | None = None
    detail: str = ""
    delay_seconds: float | None = None
    result: ValueView | None = None
    error: ErrorView | None = None
    children: list[str] = []
    token_id: str | None = None
    token_status: str | None = None


class RunSummary(BaseModel):
    """A run as listed."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task_id: str
    status: RunStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    queue: str = ""
    concurrency_key: str | None = None
    priority: int = 0
    tags: list[str] = []
    attempt: int = 1
    idempotency_key: str | None = None
    parent_run_id: str | None = None
    root_run_id: str | None = None
    #: The run this one replays, if it is a replay.
    replay_of: str | None = None
    #: A cancel waits for the invocation running it (it ends CANCELED at its next step).
    cancel_requested: bool = False


class RunDetail(RunSummary):
    """A run with its values, children and timeline."""

    payload: ValueView
    output: ValueView | None = None
    error: ErrorView | None = None
    metadata: dict[str, Any] = {}
    children: list[str] = []
    invocations: int = 0
    wake_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    timeline: list[TimelineEntry] = []


class RunPage(BaseModel):
    """One page of a listing, newest first; ``next_cursor`` continues it."""

    model_config = ConfigDict(frozen=True)

    runs: list[RunSummary]
    next_cursor: str | None = None


def value_view(text: str, *, include: bool) -> ValueView:
    """The view of a stored value (JSON text): inline if small or ``include``, else by reference."""
    data = text.encode("utf-8")
    inline = include or len(data) <= REF_THRESHOLD
    return ValueView(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        inline=inline,
        value=json.loads(text) if inline else None,
    )


def error_view(error: ErrorInfo | None) -> ErrorView | None:
    """The view of a recorded error."""
    if error is None:
        return None
    return ErrorView(type=error.type, message=error.message, traceback=error.traceback)


def run_summary(run: RunRecord) -> RunSummary:
    """The listed form of ``run``."""
    return RunSummary(
        run_id=run.run_id,
        task_id=run.task_id,
        status=run.status,
        created_at=run.created_at,
        updated_at=run.updated_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        queue=run.queue,
        concurrency_key=run.concurrency_key,
        priority=run.priority,
        tags=list(run.tags),
        attempt=run.attempt,
        idempotency_key=run.idempotency_key,
        parent_run_id=run.parent_run_id,
        root_run_id=run.root_run_id,
        replay_of=run.replay_of,
        cancel_requested=run.cancel_requested,
    )


def _children_of(entry: JournalEntry) -> list[str]:
    if entry.kind not in {EntryKind.CHILD, EntryKind.CHILD_WAIT} or entry.result is None:
        return []
    try:
        runs = json.loads(entry.result).get("runs", [])
    except (ValueError, AttributeError):
        return []
    return [str(run_id) for run_id in runs]


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000.0


def _recorded(entry: JournalEntry) -> dict[str, Any]:
    try:
        recorded = json.loads(entry.result or "{}")
    except ValueError:
        return {}
    return recorded if isinstance(recorded, dict) else {}


def token_ids(journal: Sequence[JournalEntry]) -> list[str]:
    """The ids of the wait tokens the run created, in order."""
    ids = (_recorded(e).get("id") for e in journal if e.kind is EntryKind.TOKEN)
    return [str(token_id) for token_id in ids if token_id]


def _token_line(
    entry: JournalEntry, line: TimelineEntry, tokens: Mapping[str, TokenInfo]
) -> TimelineEntry:
    """``line`` with its token's id and state; a creation spans to the token's resolution.

    Only the id and the outcome: never the callback secret (the journal keeps
    it for replay) nor the completion data.
    """
    recorded = _recorded(entry)
    if entry.kind is EntryKind.TOKEN_WAIT:
        token_id, status = recorded.get("token"), recorded.get("status")
        reason = recorded.get("reason")
        if status is None and entry.status.value == "WAITING":
            status = "PENDING"
        return line.model_copy(
            update={"token_id": token_id, "token_status": status, "detail": reason or ""}
        )
    token_id = recorded.get("id")
    token = tokens.get(str(token_id)) if token_id else None
    if token is None:
        return line.model_copy(update={"token_id": token_id, "ended_at": None, "duration_ms": None})
    return line.model_copy(
        update={
            "token_id": token_id,
            "token_status": token.status.value,
            "started_at": token.created_at,
            "ended_at": token.resolved_at,
            "duration_ms": _duration(token.created_at, token.resolved_at),
            "detail": token.timeout_reason or "",
        }
    )


def _entry_line(entry: JournalEntry, include: bool) -> TimelineEntry:  # noqa: FBT001
    end = entry.ended_at
    if entry.kind is EntryKind.WAIT and end is None:
        end = entry.wake_at
    return TimelineEntry(
        kind=entry.kind.value.lower(),
        name=entry.name,
        scope=entry.scope,
        status=entry.status.value,
        attempts=entry.attempts,
        started_at=entry.started_at,
        ended_at=end,
        duration_ms=_duration(entry.started_at, end),
        result=value_view(entry.result, include=include)
        if entry.result is not None and entry.kind is EntryKind.STEP
        else None,
        error=error_view(entry.error),
        children=_children_of(entry),
    )


def _resolve_from_waits(lines: list[TimelineEntry]) -> None:
    """A creation line with no stored token takes the state its wait recorded."""
    seen = {
        line.token_id: line
        for line in lines
        if line.kind == "token_wait" and line.token_status not in {None, "PENDING"}
    }
    for i, line in enumerate(lines):
        if line.kind == "token" and line.token_status is None and line.token_id is not None:
            wait = seen.get(line.token_id)
            status = wait.token_status if wait is not None else None
            detail = wait.detail if wait is not None else ""
            lines[i] = line.model_copy(update={"token_status": status, "detail": detail})


#: Events that end the span of an invocation.
_INVOCATION_ENDS = frozenset(
    {
        EventKind.SUSPENDED,
        EventKind.COMPLETED,
        EventKind.FAILED,
        EventKind.RUN_RETRY_SCHEDULED,
        EventKind.PARKED,
        EventKind.INVOCATION_STARTED,
    }
)


def _event_lines(events: Sequence[TimelineEvent]) -> list[TimelineEntry]:
    """Events as lines; an invocation spans to its end, a slot wait (parked) to the next start."""
    lines = []
    for i, event in enumerate(events):
        kind, end = event.kind.value, None
        if event.kind is EventKind.INVOCATION_STARTED:
            kind = "invocation"
            end = next((e.at for e in events[i + 1 :] if e.kind in _INVOCATION_ENDS), None)
        elif event.kind is EventKind.PARKED:
            kind = "slot_wait"
            starts = (e.at for e in events[i + 1 :] if e.kind is EventKind.INVOCATION_STARTED)
            end = next(starts, None)
        lines.append(
            TimelineEntry(
                kind=kind,
                name=event.kind.value,
                started_at=event.at,
                ended_at=end,
                duration_ms=_duration(event.at, end),
                detail=event.detail,
                delay_seconds=event.delay,
            )
        )
    return lines


def run_detail(
    run: RunRecord,
    journal: Sequence[JournalEntry],
    events: Sequence[TimelineEvent],
    *,
    include_values: bool = False,
    tokens: Mapping[str, TokenInfo] | None = None,
) -> RunDetail:
    """The full view of ``run``: values, children and the timeline (oldest first).

    ``tokens``: the run's wait tokens as stored, by id; a token's line then
    shows its state and spans from its creation to its resolution. Without
    one, the journal's view: what the run has seen of it.
    """
    known = tokens or {}
    lines = [_entry_line(entry, include_values) for entry in journal]
    lines = [
        _token_line(entry, line, known)
        if entry.kind in {EntryKind.TOKEN, EntryKind.TOKEN_WAIT}
        else line
        for entry, line in zip(journal, lines, strict=True)
    ]
    _resolve_from_waits(lines)
    lines += _event_lines(events)
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    lines.sort(key=lambda line: line.started_at or epoch)
    children = [run_id for line in lines for run_id in line.children]
    return RunDetail(
        **run_summary(run).model_dump(),
        payload=value_view(run.payload, include=include_values),
        output=value_view(run.output, include=include_values) if run.output is not None else None,
        error=error_view(run.error),
        metadata=dict(run.metadata),
        children=list(dict.fromkeys(children)),
        invocations=run.invocations,
        wake_at=run.wake_at,
        expires_at=run.expires_at,
        timeline=lines,
    )
