"""Plugins: objects that hear a run's invocations, steps and attempts as they happen.

A plugin is any object with some of these methods (each optional)::

    on_invocation_start(info)          on_invocation_end(info, outcome)
    on_step_start(info)                on_step_end(info, outcome)
    on_attempt(info, outcome)
    on_checkpoint(info, size)          on_run_end(info, status, hops)
    on_run_triggered(info)             on_token_resolved(run_id, status, waited)
    on_scheduler_tick(report)

``info`` is an :class:`EventInfo`, ``outcome`` an :class:`EventOutcome`;
``size`` the bytes of step results and output an invocation wrote; ``status``
a terminal :class:`~durable_lambda.engine.state.RunStatus` value and ``hops``
the run's invocations; ``waited`` the seconds a token was pending; ``report``
the scheduler's :class:`~durable_lambda.scheduler.TickReport`. Only
live work is reported: a step replayed from the journal is not an event. A
plugin's exception is logged and dropped: it never fails the run, and the
other plugins still hear the event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.observer import AttemptStatus
from durable_lambda.engine.outcome import Canceled, Completed, Failed, Outcome, RetryRun
from durable_lambda.engine.records import RunRecord

__all__ = [
    "EventInfo",
    "EventOutcome",
    "register",
    "registered",
    "unregister",
]

T = TypeVar("T")

_plugins: list[Any] = []

# The Powertools logger's own (observability.SERVICE): its handler formats these
# lines where it is set up, and the worker need not import Powertools (nor botocore).
_log = logging.getLogger("durable-lambda")


@dataclass(frozen=True, slots=True)
class EventInfo:
    """Where an event happened.

    Attributes:
        run_id: The run.
        task_id: Its task.
        attempt: The step's attempt for step events, the run's for invocation events.
        first_invocation: Whether this invocation is the first to run the task body.
        step_key: The step's identity (``scope/name#occurrence``); ``None`` for invocations.
        scope: The scope the step runs in (``""``: the task body); ``None`` for invocations.
        queue: The run's queue (``""``: not known where the event happened).
        resume_lag: Seconds between the run's wake time and this invocation
            taking it (invocation start events; ``None``: it had no wake time).
        slot_wait: Seconds from when the run could first start (its trigger, or
            its delay's end) to its first start: parked for a queue unit, held by a
            rate limit, queued (``None``: not its first start).
    """

    run_id: str
    task_id: str
    attempt: int
    first_invocation: bool
    step_key: str | None = None
    scope: str | None = None
    queue: str = ""
    resume_lag: float | None = None
    slot_wait: float | None = None


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """How an attempt, a step or an invocation ended.

    Attributes:
        status: ``succeeded``, ``failed``, ``retrying``, ``suspended`` or (an
            invocation that ended its run CANCELED) ``canceled``.
        error: The error when ``failed`` or ``retrying``.
    """

    status: AttemptStatus
    error: ErrorInfo | None = None


def register(plugin: T) -> T:
    """Make ``plugin`` hear every event in this process from now on; returns it.

    Registering the same object twice has no further effect.
    """
    if not any(p is plugin for p in _plugins):
        _plugins.append(plugin)
    return plugin


def unregister(plugin: object) -> None:
    """Stop ``plugin`` hearing events (nothing happens if it was not registered)."""
    _plugins[:] = [p for p in _plugins if p is not plugin]


def registered() -> tuple[Any, ...]:
    """The registered plugins, in registration order."""
    return tuple(_plugins)


def emit(hook: str, *args: Any) -> None:
    """Call ``hook`` on every plugin that has it; a plugin's exception is logged, never raised."""
    if not _plugins:
        return  # the common case, on every checkpoint: nobody listens
    for plugin in tuple(_plugins):
        method = getattr(plugin, hook, None)
        if method is None:
            continue
        try:
            method(*args)
        except Exception as exc:  # noqa: BLE001 - a plugin must never fail the run
            # The type only: a plugin's message could quote what it was handed.
            _log.warning(
                "plugin hook failed",
                extra={
                    "plugin": type(plugin).__qualname__,
                    "hook": hook,
                    "error": type(exc).__name__,
                },
            )


def outcome_of(outcome: Outcome) -> EventOutcome:
    """What plugins see of an invocation's outcome."""
    if isinstance(outcome, Completed):
        return EventOutcome(AttemptStatus.SUCCEEDED)
    if isinstance(outcome, Failed):
        return EventOutcome(AttemptStatus.FAILED, outcome.error)
    if isinstance(outcome, RetryRun):
        return EventOutcome(AttemptStatus.RETRYING, outcome.error)
    if isinstance(outcome, Canceled):
        return EventOutcome(AttemptStatus.CANCELED)
    # Suspended, and Abandoned: another invocation carries the run on.
    return EventOutcome(AttemptStatus.SUSPENDED)


@dataclass(frozen=True, slots=True)
class PluginObserver:
    """The engine's step observer that tells the registered plugins.

    Attributes:
        info: The invocation's event info (run, task, first invocation).
    """

    info: EventInfo

    def step_started(self, key: str, scope: str, attempt: int) -> None:
        """Tell plugins a step attempt starts."""
        if not _plugins:
            return  # the common case: no per-step cost when nobody listens
        emit("on_step_start", replace(self.info, attempt=attempt, step_key=key, scope=scope))

    def step_ended(
        self, key: str, scope: str, attempt: int, status: AttemptStatus, error: ErrorInfo | None
    ) -> None:
        """Tell plugins how the attempt ended; the step ends with it in this invocation."""
        if not _plugins:
            return
        info = replace(self.info, attempt=attempt, step_key=key, scope=scope)
        outcome = EventOutcome(status, error)
        emit("on_attempt", info, outcome)
        emit("on_step_end", info, outcome)


def info_of(run: RunRecord, *, first_invocation: bool = False) -> EventInfo:
    """The event info of ``run`` itself (no step): its ids, attempt and queue."""
    return EventInfo(run.run_id, run.task_id, run.attempt, first_invocation, queue=run.queue)


def run_ended(run: RunRecord) -> None:
    """Tell the plugins ``run`` ended (``on_run_end``), whoever wrote its terminal status."""
    emit("on_run_end", info_of(run), run.status.value, run.invocations)
