"""What a durable call is: a step's spec, its place in the journal, its running body. Pure."""

from __future__ import annotations

import contextvars
import datetime as dt
import inspect
import math
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import FunctionType
from typing import Any, Literal, NamedTuple

from durable_lambda import serde
from durable_lambda.engine.journal import (
    Call,
    EntryKind,
    EntryStatus,
    ErrorInfo,
    JournalEntry,
    call_key,
)
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import AbortRun, SerializationError, StepFailedError

WAIT_NAME = "$wait"

Semantics = Literal["at_least_once", "at_most_once"]
"""How often a step body may run per attempt: again after a crash, or never again."""

SEMANTICS: tuple[Semantics, ...] = ("at_least_once", "at_most_once")


@dataclass(frozen=True, slots=True)
class StepSpec:
    """How a step is run and recorded.

    Attributes:
        name: The step's name; with its scope and occurrence it is the step's identity.
        retry: Its retry policy; ``None`` uses the task's.
        expected_duration: Seconds the step is expected to take; the invocation
            suspends first when that would cut into the deadline's safety margin.
        result_type: Annotation the result is validated against before it is
            recorded, and decoded into on replay.
        semantics: ``at_least_once`` runs an attempt cut by a crash again;
            ``at_most_once`` records STARTED before the body and never re-runs
            that attempt (it fails with ``StepInterruptedError``).
    """

    name: str
    retry: RetryPolicy | None = None
    expected_duration: float = 0.0
    result_type: Any = None
    semantics: Semantics = "at_least_once"


class StepInfo(NamedTuple):
    """What a running step body can learn about itself (see ``TaskContext``).

    A named tuple: one is made per attempt, at a third of a frozen dataclass's cost.
    """

    run_id: str
    key: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across every attempt and replay of this step in this run."""
        return f"{self.run_id}:{self.key}"


_current_step: ContextVar[StepInfo | None] = ContextVar("durable_lambda_step", default=None)


def current_step() -> StepInfo | None:
    """The step whose body is running, or ``None`` outside a step."""
    return _current_step.get()


def in_step_body(context: contextvars.Context) -> bool:
    """Whether ``context`` is that of a running step body."""
    return context.get(_current_step) is not None


def step_context(info: StepInfo) -> contextvars.Context:
    """A copy of the current context in which ``info``'s body runs."""
    context = contextvars.copy_context()
    context.run(_current_step.set, info)
    return context


def enter_step(info: StepInfo) -> contextvars.Token[StepInfo | None]:
    """Mark ``info``'s body as running in this context (undo with :func:`leave_step`)."""
    return _current_step.set(info)


def leave_step(token: contextvars.Token[StepInfo | None]) -> None:
    """Undo :func:`enter_step`."""
    _current_step.reset(token)


class StepCall:
    """One step call: its spec, its place in the journal and its attempt number.

    Made once per call and never changed; a plain class, since a frozen
    dataclass pays for each field it sets.

    Attributes:
        spec: How the step is run and recorded.
        call: Its place in the journal.
        attempt: The attempt this call runs.
        key: The call's identity (see :func:`~durable_lambda.engine.journal.call_key`),
            asked for at every turn: built once.
    """

    __slots__ = ("attempt", "call", "key", "spec")

    def __init__(self, spec: StepSpec, call: Call, attempt: int) -> None:
        """A call of ``spec`` at ``call``, attempt ``attempt``."""
        self.spec = spec
        self.call = call
        self.attempt = attempt
        self.key = call_key(call.scope, spec.name, call.occurrence)

    def entry(self, status: EntryStatus, **fields: Any) -> JournalEntry:
        """This call's journal entry in ``status``."""
        return entry_of(self.call, self.spec.name, EntryKind.STEP, status, self.attempt, **fields)

    def completed(self, result: str, started: dt.datetime, ended: dt.datetime) -> JournalEntry:
        """``entry(COMPLETED, ...)``, built by position: every successful attempt makes one."""
        call = self.call
        return JournalEntry(
            call.seq,
            self.spec.name,
            call.occurrence,
            EntryKind.STEP,
            EntryStatus.COMPLETED,
            result,
            call.scope,
            call.position,
            None,
            self.attempt,
            started,
            ended,
        )


def entry_of(
    call: Call, name: str, kind: EntryKind, status: EntryStatus, attempts: int, **fields: Any
) -> JournalEntry:
    """The journal entry of ``call`` of ``name`` in ``status``."""
    return JournalEntry(
        seq=call.seq,
        name=name,
        occurrence=call.occurrence,
        kind=kind,
        status=status,
        attempts=attempts,
        scope=call.scope,
        position=call.position,
        **fields,
    )


def is_async(fn: Callable[..., Any]) -> bool:
    """``inspect.iscoroutinefunction(fn)``, read straight off a plain function's code.

    Asked at every step call; anything but a plain function (a bound method, a
    partial, a callable object) is asked through ``inspect``.
    """
    if type(fn) is FunctionType:
        return bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
    return inspect.iscoroutinefunction(fn)


def survives_as_is(value: Any, result_type: Any) -> bool:
    """Whether decoding ``value``'s JSON into ``result_type`` gives back an equal value.

    True of JSON text's own scalars (a finite float included) under no
    annotation, ``Any`` or their own type: no round trip is needed.
    """
    kind = type(value)
    if kind is float:
        scalar = math.isfinite(value)
    else:
        scalar = kind is int or kind is str or kind is bool or value is None
    return scalar and result_type in (None, Any, kind)


def checked_value(what: str, value: Any, result_type: Any) -> tuple[str, Any]:
    """``value`` as the JSON to record and as a replay would return it, checked first.

    Decoding what is about to be recorded both validates it against
    ``result_type`` (a return annotation) and gives the live call the value a
    replay would return.

    Raises:
        SerializationError: Naming ``what`` (``"step 'charge#0'"``), when the
            value has no JSON form or does not fit ``result_type``.
    """
    try:
        encoded = serde.encode(value)
        if survives_as_is(value, result_type):
            return encoded, value  # its decoded text would be an equal value of this type
        return encoded, serde.decode(encoded, result_type)
    except SerializationError as exc:
        raise SerializationError(f"{what} returned a value that cannot be recorded: {exc}") from exc


def error_of(exc: BaseException) -> ErrorInfo:
    """``exc`` as it is recorded, traceback included."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo.from_exception(exc, text)


def replayed_failure(entry: JournalEntry) -> Exception:
    """What a replay of a FAILED ``entry`` raises where the task awaited the step."""
    error = entry.error or ErrorInfo("UnknownError", "")
    if error.type.endswith(".AbortRun"):
        return AbortRun(error.message)
    return StepFailedError(entry.key, error.type, error.message)
