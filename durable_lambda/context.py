"""TaskContext: what a running task knows about its run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

from durable_lambda.effects import RunMetadata, task_logger
from durable_lambda.engine.batch import BatchResult, CompletionConfig
from durable_lambda.engine.calls import Semantics
from durable_lambda.engine.composition import Branch, run_batch, run_in_child_context
from durable_lambda.engine.execution import Execution, current_execution, current_step
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError
from durable_lambda.step import make_spec, return_annotation
from durable_lambda.transact import transactional


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Passed to a task as its second argument.

    Attributes:
        run_id: The run's id.
        task_id: The task's id.
        attempt: The run's attempt, from 1; a task-level retry increments it.
        tags: Tags given at trigger time.
        concurrency_key: The concurrency key given at trigger time, if any.
        metadata: Values the run publishes while it goes (``set``, ``increment``,
            ``append``); read from outside with ``client.get_run(id).metadata``.
    """

    run_id: str
    task_id: str
    attempt: int = 1
    tags: tuple[str, ...] = ()
    concurrency_key: str | None = None
    metadata: RunMetadata = field(default_factory=RunMetadata)

    @property
    def logger(self) -> Logger:
        """A Powertools logger whose lines carry run id, task id, attempt and step key.

        A line the task body logs is emitted once per run: a replay that runs
        the same code again does not emit it again. Inside a step body every
        line is emitted (bodies do not run on replay).
        """
        return task_logger()

    @property
    def idempotency_key(self) -> str:
        """A key to hand external APIs (Stripe, email) so they dedupe retries.

        Inside a step it is stable across every attempt and replay of that step;
        outside a step it identifies the run.
        """
        info = current_step()
        return info.idempotency_key if info is not None else self.run_id

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        expected_duration: float = 0.0,
        semantics: Semantics = "at_least_once",
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` as an ad-hoc step named ``name``.

        Like a ``@step`` function: journaled, retried per ``retry`` (default: the
        task's policy), and executed at most once per run unless a crash hits
        between its side effect and its record (``semantics="at_most_once"``:
        never twice, see :func:`~durable_lambda.step`).
        """
        spec = make_spec(fn, name, retry, expected_duration, semantics)
        return await _execution("ctx.step").call_step(spec, fn, args, kwargs)

    async def transact(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(tx, *args, **kwargs)`` as a step whose DynamoDB writes commit exactly once.

        The body describes writes on ``tx`` (a
        :class:`~durable_lambda.transact.Transaction`: ``put``, ``update``,
        ``delete``, ``condition_check``); they commit in the same transaction
        as the step's record, so a crash or a duplicate never applies them
        twice. The result is recorded and replayed like a step's.

        Raises:
            StepFailedError: After the last attempt, e.g. of a write whose
                condition kept failing (``TransactionConditionFailed``, retried
                per ``retry``, default the task's), or at once for writes beyond
                a transaction's limits (``TransactionLimitError``).
        """
        spec = make_spec(fn, name, retry, 0.0)
        body = transactional(fn)
        return await _execution("ctx.transact").call_step(spec, body, args, kwargs)

    async def run_in_child_context(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        result_type: Any = None,
    ) -> Any:
        """Run ``fn(ctx, *args)`` as a named block whose calls form one scope.

        Once the block returns, its result is recorded and replay returns it
        without entering the block; a block cut by a suspension is entered
        again and replays its own records. An error inside it reaches the
        caller (nothing is recorded, so a replay raises it again).

        Args:
            fn: ``async def (ctx, *args) -> T``.
            *args: Passed after ``ctx``.
            name: Its name in the journal (default: the function's name).
            result_type: What the recorded result is validated into (default:
                ``fn``'s return annotation).
        """
        execution = _execution("ctx.run_in_child_context")
        label: str = name or getattr(fn, "__name__", None) or "context"
        kind = result_type if result_type is not None else return_annotation(fn)
        return await run_in_child_context(execution, label, lambda: fn(self, *args), kind)

    async def parallel(
        self,
        branches: Sequence[Callable[[TaskContext], Awaitable[Any]]]
        | Mapping[str, Callable[[TaskContext], Awaitable[Any]]],
        *,
        name: str = "parallel",
        max_concurrency: int | None = None,
        completion: CompletionConfig | None = None,
        result_type: Any = None,
    ) -> BatchResult[Any]:
        """Run ``branches`` concurrently, each in its own scope; results in index order.

        Args:
            branches: ``async def (ctx) -> T`` functions, as a list (named by
                index) or a dict of name to function.
            name: The batch's name in the journal.
            max_concurrency: At most this many branches run at once (default: all).
            completion: When to stop early (default: run every branch; failures
                are values in the result).
            result_type: What each result is validated into (default: each
                branch's return annotation).
        """
        execution = _execution("ctx.parallel")
        named = (
            list(branches.items())
            if isinstance(branches, Mapping)
            else [(str(i), b) for i, b in enumerate(branches)]
        )
        for label, fn in named:
            _check_callable(fn, f"{name}: branch {label!r}", "(ctx)")
        specs = [
            Branch(label, partial(fn, self), result_type or return_annotation(fn))
            for label, fn in named
        ]
        return await run_batch(
            execution, name, specs, max_concurrency=max_concurrency, completion=completion
        )

    async def map(
        self,
        items: Iterable[Any],
        fn: Callable[[TaskContext, Any, int], Awaitable[Any]],
        *,
        name: str = "map",
        max_concurrency: int | None = None,
        completion: CompletionConfig | None = None,
        item_name: Callable[[Any, int], str] | None = None,
        result_type: Any = None,
    ) -> BatchResult[Any]:
        """Run ``fn(ctx, item, index)`` for each item concurrently; results in index order.

        Args:
            items: The inputs.
            fn: ``async def (ctx, item, index) -> T``.
            name: The batch's name in the journal.
            max_concurrency: At most this many items run at once (default: all).
            completion: When to stop early (default: run every item).
            item_name: Names each item's scope (default: its index).
            result_type: What each result is validated into (default: ``fn``'s
                return annotation).
        """
        execution = _execution("ctx.map")
        _check_callable(fn, f"{name}: fn", "(ctx, item, index)")
        kind = result_type or return_annotation(fn)
        specs = [
            Branch(
                item_name(item, index) if item_name is not None else str(index),
                partial(fn, self, item, index),
                kind,
            )
            for index, item in enumerate(items)
        ]
        return await run_batch(
            execution, name, specs, max_concurrency=max_concurrency, completion=completion
        )


def _check_callable(fn: object, what: str, signature: str) -> None:
    """Refuse at the call, before anything is journaled, what could never run as a branch."""
    if not callable(fn):
        raise ConfigurationError(
            f"{what} must be an async function {signature} -> T, got {type(fn).__name__}"
        )


def _execution(what: str) -> Execution:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError(f"{what} can only be awaited inside a running task")
    return execution
