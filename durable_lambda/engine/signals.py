"""The runtime's stop signals and how an invocation reads them. Pure.

Stopping is a ``BaseException`` raised where the task awaits, so ``except
Exception`` in user code never sees it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable_lambda.errors import Suspend


class SuspendSignal(Suspend):
    """Internal: stop this invocation; the reason is kept on the execution."""


class AbandonSignal(Suspend):
    """Internal: another invocation owns the run; stop without writing anything."""


class CancelSignal(Suspend):
    """Internal: a cancel was requested; stop at this step boundary, the run ends CANCELED."""


class StoreFailedSignal(Suspend):
    """Internal: the store failed to record; the invocation fails and is retried whole."""


def only_signals(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a group (a TaskGroup's) holding nothing but our stop signals."""
    return isinstance(exc, BaseExceptionGroup) and exc.split(Suspend)[1] is None


def caught_signal(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised while handling one of our stop signals."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Suspend):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a step body task's outcome as seen (its caller may have been cancelled)."""
    if not task.cancelled():
        task.exception()


def quiet_signals(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop asyncio's complaints about our stop signals left in tasks nobody awaited."""
    if isinstance(context.get("exception"), Suspend):
        return
    loop.default_exception_handler(context)


def swallowed_message(detail: str, what: str) -> str:
    """Why a run fails when its body went on after catching a stop signal at ``detail``."""
    at = f" at {detail!r}" if detail else ""
    return (
        f"the task body caught durable-lambda's suspend signal{at} and then {what} "
        "something else: a bare `except:` or `except BaseException:` (or "
        "gather(..., return_exceptions=True)) around a step or a wait swallows it. "
        "Catch `Exception` instead; the run cannot trust a result computed after that."
    )
