"""``@step``: a function whose result is journaled, so it runs once per run."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from durable_lambda.engine.execution import StepSpec, current_execution
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        return None
    annotation = hints.get("return")
    if annotation is None or annotation is type(None):
        return None
    if typing.get_origin(annotation) in {Awaitable, typing.Coroutine}:
        return None
    return annotation


class StepFunction(Generic[P, R]):
    """A step-decorated function. Await it inside a task; its result is recorded once.

    Outside a task the call simply runs the function, so helpers stay unit-testable.
    """

    def __init__(self, fn: Callable[P, R | Awaitable[R]], spec: StepSpec) -> None:
        self.fn = fn
        self.spec = spec
        functools.update_wrapper(self, fn)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Execute (or replay) the step."""
        execution = current_execution()
        if execution is None:
            value = self.fn(*args, **kwargs)
            if inspect.isawaitable(value):
                return await value
            return value
        return await execution.call_step(self.spec, self.fn, args, kwargs)  # type: ignore[no-any-return]


def make_spec(
    fn: Callable[..., Any],
    name: str | None,
    retry: RetryPolicy | None,
    expected_duration: float,
) -> StepSpec:
    """Validate a step's options and build its spec."""
    step_name = name or getattr(fn, "__name__", None)
    if not step_name or step_name.startswith("$"):
        raise ConfigurationError(
            f"step name {step_name!r} must be non-empty and not start with '$'"
        )
    if expected_duration < 0:
        raise ConfigurationError(f"step {step_name!r}: expected_duration must be >= 0 seconds")
    return StepSpec(
        name=step_name,
        retry=retry,
        expected_duration=float(expected_duration),
        result_type=_return_annotation(fn),
    )


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> StepFunction[P, R]: ...
@overload
def step(fn: Callable[P, R], /) -> StepFunction[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    expected_duration: float = 0.0,
) -> Callable[[Callable[P, R]], StepFunction[P, R]]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    expected_duration: float = 0.0,
) -> Any:
    """Make a function a durable step (sync or async).

    Args:
        fn: The function, when used as a bare ``@step``.
        name: The step's name in the journal; defaults to the function's name.
        retry: Retry policy; defaults to the task's.
        expected_duration: Seconds the step may take. When less time than this
            plus the safety margin is left before the Lambda deadline, the
            invocation checkpoints and continues in a fresh one first.

    The result must be JSON-serialisable (see :mod:`durable_lambda.serde`);
    with a return annotation it is validated back into that type on replay.
    """

    def decorate(f: Callable[..., Any]) -> StepFunction[Any, Any]:
        return StepFunction(f, make_spec(f, name, retry, expected_duration))

    if fn is not None:
        return decorate(fn)
    return decorate
