"""The step journal: what a run has done, keyed by scope and position. Pure.

Every step and wait a task makes runs in a *scope*: the task body (``""``) or
an asyncio task created inside the run (``t0``, ``t0/t1``...: numbered in
creation order within the parent scope, which is code order). Within its scope
a call has a position (the how-manieth call of the scope) and an identity
``name#occurrence``. Replay walks the same calls again; each position already
in the journal returns its recorded outcome, and a position whose recorded
identity differs from the call is non-determinism. Because identity never
depends on how scopes interleave, replay does not depend on which branch of a
``gather`` finished first.

``seq`` is only the storage slot of an entry (unique per run, allocated in
call order); journals written before scopes existed hold one scope whose
positions equal their slots, so they keep replaying.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from durable_lambda.engine.frozen import frozen_record
from durable_lambda.errors import NonDeterminismError


class EntryKind(StrEnum):
    """What a journal entry records."""

    STEP = "STEP"
    WAIT = "WAIT"
    CONTEXT = "CONTEXT"  # a child context: its result, recorded once it returned
    BATCH = "BATCH"  # ctx.parallel / ctx.map: the aggregate result, recorded once complete
    CHILD = "CHILD"  # child runs triggered: their run ids
    CHILD_WAIT = "CHILD_WAIT"  # child runs triggered and awaited: their ids, then their results
    TOKEN = "TOKEN"  # noqa: S105 - a wait token created: its id and deadlines
    TOKEN_WAIT = "TOKEN_WAIT"  # noqa: S105 - a wait on a token: its id, then its outcome


class EntryStatus(StrEnum):
    """Where a journal entry is."""

    COMPLETED = "COMPLETED"  # a step's result is recorded; a short wait has elapsed
    RETRYING = "RETRYING"  # a step failed an attempt and will run again at next_attempt_at
    FAILED = "FAILED"  # a step failed its last attempt
    WAITING = "WAITING"  # a wait is pending until wake_at
    STARTED = "STARTED"  # an at_most_once step's attempt began; no outcome recorded yet


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception, recorded: type, message and traceback text."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, traceback: str = "") -> ErrorInfo:
        """Record ``exc`` with its qualified type name."""
        kind = type(exc)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        return cls(type=name, message=str(exc), traceback=traceback)


@frozen_record
class JournalEntry:
    """One recorded call of a task.

    Attributes:
        seq: The entry's storage slot in the run, from 0 (unique per run).
        name: The step's name (``$wait`` for waits).
        occurrence: How many calls of that name came before it in its scope.
        kind: Step or wait.
        status: Completed, retrying, failed or waiting.
        result: The encoded result (JSON text) of a completed step, or ``None``.
        error: The last error of a failed or retrying step.
        attempts: Attempts made so far.
        started_at: When the last attempt started.
        ended_at: When the entry reached its status.
        wake_at: When a wait ends, or when a retrying step runs next.
        scope: The scope path the call ran in (``""``: the task body).
        position: The call's position within its scope (``None``: ``seq``, as
            in journals written before scopes existed).
    """

    seq: int
    name: str
    occurrence: int
    kind: EntryKind
    status: EntryStatus
    result: str | None = None
    scope: str = ""
    position: int | None = None
    error: ErrorInfo | None = None
    attempts: int = 1
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    wake_at: dt.datetime | None = None

    @property
    def key(self) -> str:
        """The entry's identity: ``name#occurrence``, prefixed by its scope when nested."""
        return call_key(self.scope, self.name, self.occurrence)

    @property
    def slot(self) -> tuple[str, int]:
        """Where the entry sits: its scope and its position within it."""
        return (self.scope, self.seq if self.position is None else self.position)


def call_key(scope: str, name: str, occurrence: int) -> str:
    """The identity of a call: ``name#occurrence``, or ``scope/name#occurrence``."""
    return f"{scope}/{name}#{occurrence}" if scope else f"{name}#{occurrence}"


class Call(NamedTuple):
    """A call's place in the journal, and what the journal recorded there if anything.

    A named tuple: one is made per call, and a tuple is built at a third of
    a frozen dataclass's cost.
    """

    seq: int
    scope: str
    position: int
    occurrence: int
    recorded: JournalEntry | None


@dataclass(slots=True)
class Journal:
    """The entries of one run, by scope and position, and the cursors of the replay."""

    entries: dict[tuple[str, int], JournalEntry] = field(default_factory=dict)
    _next_seq: int = 0
    #: The replay's cursors: calls made so far per scope, and per (scope, name).
    #: Flat dicts, not an object per scope: a 1,000-item map has 1,000 scopes.
    _calls: dict[str, int] = field(default_factory=dict)
    _occurrences: dict[tuple[str, str], int] = field(default_factory=dict)
    _visited: set[tuple[str, int]] = field(default_factory=set)
    _covered: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, entries: list[JournalEntry]) -> Journal:
        """A journal holding ``entries`` (any order)."""
        by_slot = {e.slot: e for e in entries}
        next_seq = max((e.seq for e in entries), default=-1) + 1
        return cls(entries=by_slot, _next_seq=next_seq)

    def next_call(self, scope: str, name: str, kind: EntryKind) -> Call:
        """Assign the next position of ``scope`` to a call of ``name``.

        Raises:
            NonDeterminismError: The journal holds another call at this position.
        """
        position = self._calls.get(scope, 0)
        self._calls[scope] = position + 1
        named = (scope, name)
        occurrence = self._occurrences.get(named, 0)
        self._occurrences[named] = occurrence + 1
        recorded = self.entries.get((scope, position))
        if recorded is None:
            seq = self._next_seq
            self._next_seq = seq + 1
            return Call(seq, scope, position, occurrence, None)
        if recorded.name != name or recorded.occurrence != occurrence or recorded.kind != kind:
            raise NonDeterminismError(
                position, recorded.key, call_key(scope, name, occurrence), scope=scope
            )
        self._visited.add((scope, position))
        return Call(recorded.seq, scope, position, occurrence, recorded)

    def record(self, entry: JournalEntry) -> None:
        """Keep ``entry`` (after it was persisted); it counts as reached by this replay."""
        self.entries[entry.slot] = entry
        self._visited.add(entry.slot)

    def cover(self, path: str) -> None:
        """Entries under scope ``path`` need no visit: a composite call replayed whole."""
        self._covered.append(path)

    def unvisited(self) -> list[JournalEntry]:
        """Recorded entries no call of this replay reached, in storage order."""
        missed = [
            e
            for slot, e in self.entries.items()
            if slot not in self._visited and not self._is_covered(e.scope)
        ]
        return sorted(missed, key=lambda e: e.seq)

    def _is_covered(self, scope: str) -> bool:
        return any(scope == p or scope.startswith(f"{p}/") for p in self._covered)

    def __len__(self) -> int:
        """The number of recorded entries."""
        return len(self.entries)
