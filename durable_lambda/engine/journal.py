"""The step journal: what a run has done, keyed by call position. Pure.

Every step, wait and child trigger a task makes gets a position (``seq``) in
call order and an identity ``name#occurrence``. Replay walks the same calls
again; each position already in the journal returns its recorded outcome, and
a position whose recorded identity differs from the call is non-determinism.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum

from durable_lambda.errors import NonDeterminismError


class EntryKind(StrEnum):
    """What a journal entry records."""

    STEP = "STEP"
    WAIT = "WAIT"


class EntryStatus(StrEnum):
    """Where a journal entry is."""

    COMPLETED = "COMPLETED"  # a step's result is recorded; a short wait has elapsed
    RETRYING = "RETRYING"  # a step failed an attempt and will run again at next_attempt_at
    FAILED = "FAILED"  # a step failed its last attempt
    WAITING = "WAITING"  # a wait is pending until wake_at


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


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded call of a task.

    Attributes:
        seq: Position of the call in the run, from 0.
        name: The step's name (``$wait`` for waits).
        occurrence: How many calls of that name came before it in the run.
        kind: Step or wait.
        status: Completed, retrying, failed or waiting.
        result: The encoded result (JSON text) of a completed step, or ``None``.
        error: The last error of a failed or retrying step.
        attempts: Attempts made so far.
        started_at: When the last attempt started.
        ended_at: When the entry reached its status.
        wake_at: When a wait ends, or when a retrying step runs next.
    """

    seq: int
    name: str
    occurrence: int
    kind: EntryKind
    status: EntryStatus
    result: str | None = None
    error: ErrorInfo | None = None
    attempts: int = 1
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    wake_at: dt.datetime | None = None

    @property
    def key(self) -> str:
        """The entry's identity, ``name#occurrence``."""
        return f"{self.name}#{self.occurrence}"

    def with_result(self, result: str) -> JournalEntry:
        """A copy holding ``result`` (used when a large value moves to a blob)."""
        return replace(self, result=result)


@dataclass(slots=True)
class Journal:
    """The entries of one run, by position, and the cursor of the replay."""

    entries: dict[int, JournalEntry] = field(default_factory=dict)
    _next_seq: int = 0
    _occurrences: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[JournalEntry]) -> Journal:
        """A journal holding ``entries`` (any order)."""
        return cls(entries={e.seq: e for e in entries})

    def next_call(self, name: str, kind: EntryKind) -> tuple[int, int, JournalEntry | None]:
        """Assign the next position to a call of ``name``.

        Returns:
            ``(seq, occurrence, recorded entry or None)``.

        Raises:
            NonDeterminismError: The journal holds another call at this position.
        """
        seq = self._next_seq
        self._next_seq = seq + 1
        occurrence = self._occurrences.get(name, 0)
        self._occurrences[name] = occurrence + 1
        recorded = self.entries.get(seq)
        if recorded is not None and (
            recorded.name != name or recorded.occurrence != occurrence or recorded.kind != kind
        ):
            raise NonDeterminismError(seq, recorded.key, f"{name}#{occurrence}")
        return seq, occurrence, recorded

    def record(self, entry: JournalEntry) -> None:
        """Keep ``entry`` (after it was persisted)."""
        self.entries[entry.seq] = entry

    @property
    def replaying(self) -> bool:
        """True while calls still reach recorded positions."""
        return self._next_seq < len(self.entries) or self._next_seq in self.entries

    def __len__(self) -> int:
        """The number of recorded entries."""
        return len(self.entries)
