"""Scopes: deterministic names for the asyncio tasks a run creates. Pure.

A call's identity is its scope path plus its name plus its occurrence within
that scope. The task body is the root scope ``""``; every asyncio task created
while the run executes (by ``asyncio.gather``, ``create_task``, a ``TaskGroup``)
is a child scope named by its creation order within its parent (``t0``,
``t1``, ``t0/t0``...). Creation order is code order, so the names are the same
on every replay whatever order the tasks finish in.

Tasks created inside a step body are not scopes: step bodies do not run on
replay, so counting their tasks would shift the numbering of later siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine, Generator, Iterator, Sequence
from typing import Any

ROOT = ""

_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "durable_lambda_scope", default=None
)
#: Set in the context of a task created with a scope already chosen (a batch branch).
_named: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "durable_lambda_scope_named", default=False
)


def current_scope() -> str:
    """The scope path of the running code (the root outside any numbered task)."""
    return _scope.get() or ROOT


@contextlib.contextmanager
def in_scope(path: str) -> Iterator[None]:
    """Run the enclosed code (in this task) in scope ``path`` (a child context)."""
    token = _scope.set(path)
    try:
        yield
    finally:
        _scope.reset(token)


def scope_context(path: str) -> contextvars.Context:
    """A copy of the current context whose scope is ``path``, to run a scope's code in.

    For code driven inside the current task (a batch's branches): tasks it
    creates are numbered from ``path``, as they would be in a task of that scope.
    """
    context = contextvars.copy_context()
    context.run(_enter, path, False)
    return context


def _enter(path: str, named: bool) -> None:  # noqa: FBT001 - the context var's value
    _scope.set(path)
    _named.set(named)


def named_scope_context(path: str) -> contextvars.Context:
    """A context for a new task whose scope is ``path`` rather than the next number."""
    context = contextvars.copy_context()
    context.run(_enter, path, True)
    return context


class ScopeNumbering:
    """Hands out child scope names, per parent scope, in creation order."""

    def __init__(self, is_step_body: Callable[[contextvars.Context], bool]) -> None:
        """``is_step_body(context)`` tells whether a task is being created by a step body."""
        self._children: dict[str, int] = {}
        self._is_step_body = is_step_body

    def child_of(self, parent: str) -> str:
        """The next child scope of ``parent``."""
        index = self._children.get(parent, 0)
        self._children[parent] = index + 1
        return f"{parent}/t{index}" if parent else f"t{index}"

    def task_factory(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        """An event-loop task factory that gives each new task its scope."""
        given: contextvars.Context | None = kwargs.pop("context", None)
        context = given.copy() if given is not None else contextvars.copy_context()
        parent = context.get(_scope)
        if context.get(_named):
            # A batch branch: its scope is its name; tasks it creates number from it.
            context.run(_named.set, False)
        elif parent is None:
            # The first task of the loop is the task body itself: the root.
            context.run(_scope.set, ROOT)
        elif not self._is_step_body(context):
            context.run(_scope.set, self.child_of(parent))
        return asyncio.Task(coro, loop=loop, context=context, **kwargs)


def within(scope: str, scopes: Sequence[str]) -> bool:
    """Whether ``scope`` is one of ``scopes`` or nested below one of them."""
    return any(scope == s or scope.startswith(f"{s}/") for s in scopes)
