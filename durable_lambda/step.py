"""``@step``: a function whose result is journaled, so it runs once per run."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from pydantic import ValidationError

from durable_lambda import serde
from durable_lambda.engine.execution import StepSpec, current_execution
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError, SerializationError

P = ParamSpec("P")
R = TypeVar("R")


def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        # include_extras keeps Annotated[...] metadata: Field(gt=0) must hold.
        hints = typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError):
        return None
    annotation = hints.get("return")
    if annotation is None or annotation is type(None):
        return None
    if typing.get_origin(annotation) in {Awaitable, typing.Coroutine}:
        return None
    return annotation


def checked_body(spec: StepSpec, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its result validated against the step's return annotation.

    The check runs inside the step body, before the engine records the result,
    so a result that breaks its annotation (``Annotated[int, Field(gt=0)]``
    returning -1) fails the step instead of being recorded and then failing on
    every replay. The error is terminal: retrying the same code will not fix it.
    """
    annotation = spec.result_type
    if annotation is None or annotation is Any:
        return fn

    def check(value: Any) -> Any:
        try:
            return serde.adapter_for(annotation).validate_python(value)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise SerializationError(
                f"step {spec.name!r} returned a value that does not match its return "
                f"annotation: {detail}"
            ) from exc

    async def check_later(value: Awaitable[Any]) -> Any:
        return check(await value)

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        return check_later(value) if inspect.isawaitable(value) else check(value)

    return body


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
        return await execution.call_step(  # type: ignore[no-any-return]
            self.spec, checked_body(self.spec, self.fn), args, kwargs
        )


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
