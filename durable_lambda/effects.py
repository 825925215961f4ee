"""What a running task tells the world as it goes: ``ctx.metadata`` and ``ctx.logger``.

The task body runs again from the top on every invocation, so any call it
makes outside a step is made again by each replay. Metadata changes and log
lines must still happen once per run, not once per invocation. They are
counted per scope (code order within a scope is the same on every replay), and
the counts are stored with the metadata (``engine/metadata.py``): the k-th call
of a scope that an earlier invocation already stored is a replay and is
skipped. Calls inside a step body never replay (the body does not run on
replay); their metadata changes take effect with the step's successful record.

Changes are written with the invocation's next journal record or its
checkpoint, never in a request of their own.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from durable_lambda.engine.calls import current_step
from durable_lambda.engine.journal import EntryStatus, JournalEntry
from durable_lambda.engine.metadata import encode_doc, encode_values
from durable_lambda.engine.scopes import current_scope
from durable_lambda.errors import ConfigurationError, PayloadTooLarge, TransactionConditionFailed
from durable_lambda.redaction import RedactFilter

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from durable_lambda.engine.records import RunRecord
    from durable_lambda.engine.transaction import TableWrite

Change = Callable[[dict[str, Any]], None]

#: Mark prefixes: metadata calls and log lines are counted apart.
METADATA_MARK = "m"
LOG_MARK = "log"

_current: ContextVar[RunEffects | None] = ContextVar("durable_lambda_effects", default=None)


@dataclass(eq=False)
class RunEffects:
    """One invocation's view of a run's metadata and replay marks.

    Attributes:
        run_id: The run.
        task_id: Its task.
        attempt: The run's attempt.
        values: The metadata values as they stand.
        marks: Per ``<kind>:<scope>``, calls the task body made live so far in the run.
    """

    run_id: str = ""
    task_id: str = ""
    attempt: int = 1
    values: dict[str, Any] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    _step_changes: dict[str, list[Change]] = field(default_factory=dict)
    _unsaved: bool = False
    _changed: bool = False

    @classmethod
    def of(cls, run: RunRecord) -> RunEffects:
        """The effects of ``run`` as stored, for one invocation.

        The values are copied deep: a step's settled ``append`` changes its list
        in place, which must never reach the record the store handed out.
        """
        values = copy.deepcopy(dict(run.metadata))
        return cls(run.run_id, run.task_id, run.attempt, values, dict(run.metadata_marks))

    def live(self, kind: str) -> bool:
        """Count a call of ``kind`` by the task body in this scope; False when it is a replay."""
        key = f"{kind}:{current_scope()}"
        made = self._seen.get(key, 0)
        self._seen[key] = made + 1
        if made < self.marks.get(key, 0):
            return False
        self.marks[key] = made + 1
        self._touch()
        return True

    def change(self, change: Change) -> None:
        """Apply ``change`` to the values once per run (see the module docstring).

        Raises:
            PayloadTooLarge: The values would be above 32 KB encoded.
        """
        step = current_step()
        if step is None and not self.live(METADATA_MARK):
            return
        pending = self._step_changes.get(step.key, []) if step is not None else []
        trial = copy.deepcopy(self.values)
        for earlier in (*pending, change):
            earlier(trial)
        encode_values(trial)  # refuse it here, at the call, if it is too large
        if step is not None:
            self._step_changes.setdefault(step.key, []).append(change)
            return
        self.values = trial
        self._touch()

    def settle(self, step_key: str, *, succeeded: bool) -> None:
        """A step's attempt was recorded: its body's changes take effect if it succeeded."""
        changes = self._step_changes.pop(step_key, [])
        if succeeded and changes:
            for change in changes:
                change(self.values)
            self._touch()

    def recorder(
        self, write: Callable[[JournalEntry, str | None], None]
    ) -> Callable[[JournalEntry], None]:
        """The engine's ``record``: ``write(entry, document)``, the document when unsaved."""

        def record(entry: JournalEntry) -> None:
            # Most steps change nothing: no key to build, no changes to settle.
            if not self._step_changes or entry.status is EntryStatus.STARTED:
                write(entry, self.unsaved())
                return
            succeeded = entry.status is EntryStatus.COMPLETED
            self._settled(entry.key, lambda document: write(entry, document), succeeded=succeeded)

        return record

    def transactor(
        self, write: Callable[[JournalEntry, tuple[TableWrite, ...], str | None], None]
    ) -> Callable[[JournalEntry, tuple[TableWrite, ...]], None]:
        """The engine's ``transact``: as :meth:`recorder`, for a transactional step's record.

        Only a completed attempt has writes to commit.
        """

        def record(entry: JournalEntry, writes: tuple[TableWrite, ...]) -> None:
            def commit(document: str | None) -> None:
                write(entry, writes, document)

            self._settled(entry.key, commit, succeeded=True)

        return record

    def _settled(
        self, step_key: str, write: Callable[[str | None], None], *, succeeded: bool
    ) -> None:
        """Settle ``step_key``'s changes, then ``write`` the record with the document.

        A write refused as the attempt's own failure (its result too large, a
        transaction's condition) means the attempt failed after all: its
        changes are dropped again, and the FAILED record that follows carries
        none of them.
        """
        before = (copy.deepcopy(self.values), self._unsaved, self._changed)
        self.settle(step_key, succeeded=succeeded)
        try:
            write(self.unsaved())
        except (PayloadTooLarge, TransactionConditionFailed):
            self.values, self._unsaved, self._changed = before
            raise

    def unsaved(self) -> str | None:
        """The document to write with the next record, if anything changed since the last."""
        if not self._unsaved:
            return None
        self._unsaved = False
        return encode_doc(self.values, self.marks)

    def document(self) -> str | None:
        """The document to write with the checkpoint, if this invocation changed it."""
        return encode_doc(self.values, self.marks) if self._changed else None

    def _touch(self) -> None:
        self._unsaved = self._changed = True


def bind(effects: RunEffects | None) -> object:
    """Make ``effects`` the current run's (for the task logger); undo with :func:`unbind`."""
    return _current.set(effects)


def unbind(token: object) -> None:
    """Undo :func:`bind`."""
    _current.reset(token)  # type: ignore[arg-type]


class RunMetadata(Mapping[str, Any]):
    """``ctx.metadata``: small JSON values the run publishes while it goes.

    Readable from outside as ``client.get_run(run_id).metadata``; at most 32 KB
    encoded. Each change is stored with the invocation's next record or
    checkpoint, and made once per run however often the code replays.
    """

    def __init__(self, effects: RunEffects | None = None) -> None:
        """Wrap an invocation's effects (``None``: a context outside any run)."""
        self._effects = effects or RunEffects()

    def __getitem__(self, key: str) -> Any:
        """The value of ``key``."""
        return self._effects.values[key]

    def __iter__(self) -> Iterator[str]:
        """The keys."""
        return iter(self._effects.values)

    def __len__(self) -> int:
        """How many keys."""
        return len(self._effects.values)

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (JSON)."""

        def change(values: dict[str, Any]) -> None:
            values[key] = value

        self._effects.change(change)

    def increment(self, key: str, by: float = 1) -> None:
        """Add ``by`` to the number at ``key`` (0 when absent).

        Raises:
            ConfigurationError: ``key`` holds something other than a number.
        """

        def change(values: dict[str, Any]) -> None:
            current = values.get(key, 0)
            if isinstance(current, bool) or not isinstance(current, int | float):
                raise ConfigurationError(
                    f"metadata {key!r} holds a {type(current).__name__}, not a number"
                )
            values[key] = current + by

        self._effects.change(change)

    def append(self, key: str, value: Any) -> None:
        """Append ``value`` to the list at ``key`` (a new list when absent).

        Raises:
            ConfigurationError: ``key`` holds something other than a list.
        """

        def change(values: dict[str, Any]) -> None:
            current = values.setdefault(key, [])
            if not isinstance(current, list):
                raise ConfigurationError(
                    f"metadata {key!r} holds a {type(current).__name__}, not a list"
                )
            current.append(value)

        self._effects.change(change)


class _ReplayFilter(logging.Filter):
    """Drops task-body lines a replay emits again; adds the run's keys to the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        effects = _current.get()
        if effects is None:
            return True
        step = current_step()
        if step is None and not effects.live(LOG_MARK):
            return False
        record.run_id = effects.run_id
        record.task_id = effects.task_id
        record.attempt = effects.attempt
        record.step_key = step.key if step is not None else None
        if step is not None:
            record.step_attempt = step.attempt
        return True


@functools.cache
def task_logger() -> Logger:
    """The Powertools logger of task code (``ctx.logger``), built on first use.

    A child of the library's own logger (its handler formats the lines where it
    is set up), so dropping replayed task lines never touches the library's.
    Powertools is imported here, not at import time: the worker path stays free
    of it (and of botocore) until a task logs.
    """
    from aws_lambda_powertools import Logger  # noqa: PLC0415 - see above

    logger = Logger(service="durable-lambda", child=True)
    logger.addFilter(_ReplayFilter())
    logger.addFilter(RedactFilter())  # after the replay filter: only emitted lines pay for it
    return logger
