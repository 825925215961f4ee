"""Composite calls in one run: child contexts, and parallel branches with a completion policy. Pure.

A child context is a named block whose calls form one scope; once it returns,
its result is recorded and replay returns it without entering the block. A
batch (``ctx.parallel``, ``ctx.map``) runs each branch in a scope named after
it, at most ``max_concurrency`` at once, stops early as its
:class:`~durable_lambda.engine.batch.CompletionConfig` says, and records its
whole result once complete, so replay never re-reads every branch.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from durable_lambda import serde
from durable_lambda.engine.batch import (
    BatchItem,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    ItemStatus,
    batch_of_record,
    batch_record,
)
from durable_lambda.engine.calls import checked_value, entry_of, survives_as_is
from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, call_key
from durable_lambda.engine.scopes import (
    current_scope,
    in_scope,
    named_scope_context,
    scope_context,
)
from durable_lambda.errors import ConfigurationError, SerializationError, Suspend

if TYPE_CHECKING:
    from durable_lambda.engine.execution import Execution

T = TypeVar("T")


class Branch(NamedTuple):
    """One branch of a batch: its name, the coroutine factory, its result type.

    A named tuple: a map makes one per item.
    """

    name: str
    run: Callable[[], Awaitable[Any]]
    result_type: Any = None


async def run_in_child_context(
    execution: Execution, name: str, body: Callable[[], Awaitable[Any]], result_type: Any
) -> Any:
    """Run ``body`` as the child context ``name``: replayed whole once it has returned."""
    _check_name(name, "child context")
    call = execution.journal.next_call(current_scope(), name, EntryKind.CONTEXT)
    path = call_key(call.scope, name, call.occurrence)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.journal.cover(path)
        execution.steps_replayed += 1
        return serde.decode(recorded.result or "null", result_type)
    execution.check_not_stopping()
    started = execution.env.now()
    with in_scope(path):
        value = await body()
    # A result computed after a stop (user code swallowed the signal) is never
    # recorded: the invocation ends and a replay computes it again.
    execution.check_not_stopping()
    encoded, result = checked_value(f"child context {path!r}", value, result_type)
    execution.persist(
        entry_of(
            call,
            name,
            EntryKind.CONTEXT,
            EntryStatus.COMPLETED,
            1,
            result=encoded,
            started_at=started,
            ended_at=execution.env.now(),
        )
    )
    return result


async def run_batch(
    execution: Execution,
    name: str,
    branches: Sequence[Branch],
    *,
    max_concurrency: int | None,
    completion: CompletionConfig | None,
) -> BatchResult[Any]:
    """Run ``branches`` as the batch ``name`` and return its result in index order."""
    _check_name(name, "batch")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigurationError(f"{name}: max_concurrency must be >= 1, got {max_concurrency}")
    names = [b.name for b in branches]
    for branch_name in names:
        _check_name(branch_name, f"{name}: branch")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{name}: branch names must be unique, got {names}")
    call = execution.journal.next_call(current_scope(), name, EntryKind.BATCH)
    path = call_key(call.scope, name, call.occurrence)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.journal.cover(path)
        execution.steps_replayed += 1
        stored = batch_of_record(serde.decode(recorded.result or "null"))
        return _typed(stored, branches)
    if not branches:
        return BatchResult(items=(), completion_reason=CompletionReason.ALL_COMPLETED)
    execution.check_not_stopping()
    started = execution.env.now()
    run = _BatchRun(path, branches, max_concurrency or len(branches), completion)
    plain, values = await run.go(execution)
    execution.check_not_stopping()  # as for a child context: no result computed after a stop
    execution.persist(
        entry_of(
            call,
            name,
            EntryKind.BATCH,
            EntryStatus.COMPLETED,
            1,
            result=serde.encode(batch_record(plain)),
            started_at=started,
            ended_at=execution.env.now(),
        )
    )
    # The live call returns the values the branches' results were validated
    # into as they ended; a replay validates the recorded ones (``_typed``).
    items = tuple(
        item
        if item.status is not ItemStatus.SUCCEEDED or values[item.index] is item.result
        else BatchItem(item.index, item.name, item.status, values[item.index])
        for item in plain.items
    )
    return BatchResult(items=items, completion_reason=plain.completion_reason)


def _recordable(what: Callable[[], str], value: Any, result_type: Any) -> tuple[Any, Any]:
    """``value`` as plain JSON data (to record) and validated into ``result_type``.

    One encoding and one decoding, as :func:`checked_value` does for a step.

    Raises:
        SerializationError: Naming ``what()`` (built only then), when the value
            has no JSON form or does not fit ``result_type``.
    """
    if survives_as_is(value, result_type):
        return value, value  # its JSON round trip is itself: skip the encoding
    try:
        plain = serde.decode(serde.encode(value))
        return plain, serde.validate(plain, result_type)
    except SerializationError as exc:
        raise SerializationError(
            f"{what()} returned a value that cannot be recorded: {exc}"
        ) from exc


def _typed(plain: BatchResult[Any], branches: Sequence[Branch]) -> BatchResult[Any]:
    """``plain`` (results as JSON data) with each result validated into its branch's type."""
    items = tuple(
        item
        if item.status is not ItemStatus.SUCCEEDED or branches[item.index].result_type is None
        else BatchItem(
            item.index,
            item.name,
            item.status,
            serde.adapter_for(branches[item.index].result_type).validate_python(item.result),
        )
        for item in plain.items
    )
    return BatchResult(items=items, completion_reason=plain.completion_reason)


def _check_name(name: str, what: str) -> None:
    if not name or "/" in name or "#" in name:
        raise ConfigurationError(f"{what} name {name!r} must be non-empty, without '/' or '#'")


class _BatchRun:
    """One invocation's run of a batch's branches.

    ``limit`` runner tasks take the branches in index order, each branch in
    its own scope: a thousand items cost a thousand scopes but not a thousand
    asyncio tasks (and their contexts) when only a few may run at once.
    """

    def __init__(
        self,
        path: str,
        branches: Sequence[Branch],
        limit: int,
        completion: CompletionConfig | None,
    ) -> None:
        self.path = path
        self.branches = branches
        self.limit = min(limit, len(branches))
        self.completion = completion or CompletionConfig()
        self.items: list[BatchItem[Any] | None] = [None] * len(branches)
        #: Each successful branch's value as the live call returns it (validated once).
        self.values: list[Any] = [None] * len(branches)
        self.succeeded = 0
        self.failed = 0
        self.reason: CompletionReason | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.stops: list[BaseException] = []
        self.next_index = 0

    def scope_of(self, index: int) -> str:
        return f"{self.path}/{self.branches[index].name}"

    async def go(self, execution: Execution) -> tuple[BatchResult[Any], list[Any]]:
        """Run the branches; the plain result (to record) and the live values by index."""
        loop = asyncio.get_running_loop()
        # A named context: the runners take no number in the caller's scope, so
        # tasks the caller creates later are numbered as if the batch made none.
        self.tasks = [
            loop.create_task(self._runner(), context=named_scope_context(self.path))
            for _ in range(self.limit)
        ]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.reason is None or self.reason is CompletionReason.ALL_COMPLETED:
            if self.stops:
                raise self.stops[0]  # branches wait or hop: the whole run suspends
        else:
            # Complete early: what the cut branches asked for is no longer needed.
            cut = [self.scope_of(i) for i, item in enumerate(self.items) if item is None]
            execution.withdraw_suspends(cut)
        items = tuple(
            item or BatchItem(i, self.branches[i].name, ItemStatus.NOT_STARTED)
            for i, item in enumerate(self.items)
        )
        plain = BatchResult(
            items=items, completion_reason=self.reason or CompletionReason.ALL_COMPLETED
        )
        return plain, self.values

    async def _runner(self) -> None:
        """Run branches one after another, in index order, until none is left or the batch ends."""
        while self.reason is None and self.next_index < len(self.branches):
            index = self.next_index
            self.next_index = index + 1
            try:
                # In a context of its own, as a task per branch would have it (its
                # scope, and any context variable user code sets, stay its own),
                # without the cost of a task per branch.
                await _in_context(self._branch(index), scope_context(self.scope_of(index)))
            except Suspend as stop:
                # This branch waits or hops; the others go on as far as their
                # journal takes them (a new call raises the stop again).
                self.stops.append(stop)

    async def _branch(self, index: int) -> None:
        branch = self.branches[index]
        try:
            value = await branch.run()
            plain, typed = _recordable(
                lambda: f"branch {self.scope_of(index)!r}", value, branch.result_type
            )
        except Exception as exc:  # noqa: BLE001 - a branch failure is a value of the batch
            self.items[index] = BatchItem(
                index, branch.name, ItemStatus.FAILED, error=ErrorInfo.from_exception(exc)
            )
            self.failed += 1
        else:
            self.items[index] = BatchItem(index, branch.name, ItemStatus.SUCCEEDED, plain)
            self.values[index] = typed
            self.succeeded += 1
        if self.reason is None:
            self.reason = self.completion.decide(self.succeeded, self.failed, len(self.branches))
            if self.reason is not None and self.reason is not CompletionReason.ALL_COMPLETED:
                current = asyncio.current_task()
                for task in self.tasks:
                    if task is not current and not task.done():
                        task.cancel()  # a step body in flight is shielded: it still records


class _Forward:
    """Hands what a driven coroutine yielded (a future, or ``None``) up to the running task."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, None]:
        yield self.value


async def _in_context(awaitable: Awaitable[T], context: contextvars.Context) -> T:
    """Await ``awaitable`` with each of its steps run in ``context``.

    What ``asyncio.Task`` does for its coroutine, inside the current task: the
    futures the coroutine waits on are waited on by this task, and what the
    task is sent or thrown (a cancellation) is passed on into the coroutine.
    """
    steps = awaitable.__await__()
    try:
        pending = context.run(steps.send, None)
        while True:
            try:
                await _Forward(pending)
            except BaseException as exc:  # noqa: BLE001 - a cancellation: the coroutine's to handle
                pending = context.run(steps.throw, exc)
            else:
                pending = context.run(steps.send, None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
