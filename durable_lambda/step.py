"""``@step``: a function whose result is journaled, so it runs once per run."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from durable_lambda.engine.calls import SEMANTICS, Semantics
from durable_lambda.engine.execution import StepSpec, current_execution
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


def return_annotation(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` to validate its results into (``None``: none)."""
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


class _Step:
    """What sync and async steps share; they differ only in how their call is typed."""

    def __init__(self, fn: Callable[..., Any], spec: StepSpec) -> None:
        self.fn = fn
        self.spec = spec

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        execution = current_execution()
        if execution is None:
            # Outside a task a step is its function: helpers stay unit-testable.
            return self.fn(*args, **kwargs)
        return execution.call_step(self.spec, self.fn, args, kwargs)


class StepFunction(_Step, Generic[P, R]):
    """An async step. Await it inside a task; its result is recorded once.

    Outside a task the call returns the function's own coroutine.
    """

    fn: Callable[P, Awaitable[R]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Execute (or replay) the step; outside a task, call the function."""
        return self._call(args, kwargs)  # type: ignore[no-any-return]


class SyncStepFunction(_Step, Generic[P, R]):
    """A sync step. Await it inside a task; its result is recorded once.

    Outside a task the call is a plain, synchronous call of the function and
    returns its value. The call is typed for its use in tasks (``await``):
    a type checker cannot know whether a call runs inside one.
    """

    fn: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Execute (or replay) the step; outside a task, return ``fn(*args, **kwargs)``."""
        return self._call(args, kwargs)  # type: ignore[no-any-return]


class _StepDecorator:
    """``@step(...)`` with options: picks the wrapper by whether the function is async."""

    def __init__(
        self,
        name: str | None,
        retry: RetryPolicy | None,
        expected_duration: float,
        semantics: Semantics,
    ) -> None:
        self.name = name
        self.retry = retry
        self.expected_duration = expected_duration
        self.semantics = semantics

    # An async function also matches the second overload (its R being a
    # coroutine); the first, more specific one wins, which is the intent.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Awaitable[R]], /
    ) -> StepFunction[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> SyncStepFunction[P, R]: ...
    def __call__(self, fn: Callable[..., Any], /) -> _Step:
        spec = make_spec(fn, self.name, self.retry, self.expected_duration, self.semantics)
        wrapper: StepFunction[..., Any] | SyncStepFunction[..., Any]
        if inspect.iscoroutinefunction(fn):
            wrapper = StepFunction(fn, spec)
        else:
            wrapper = SyncStepFunction(fn, spec)
        functools.update_wrapper(wrapper, fn)
        return wrapper


def make_spec(
    fn: Callable[..., Any],
    name: str | None,
    retry: RetryPolicy | None,
    expected_duration: float,
    semantics: Semantics = "at_least_once",
) -> StepSpec:
    """Validate a step's options and build its spec."""
    step_name = name or getattr(fn, "__name__", None)
    if not step_name or step_name.startswith("$"):
        raise ConfigurationError(
            f"step name {step_name!r} must be non-empty and not start with '$'"
        )
    if expected_duration < 0:
        raise ConfigurationError(f"step {step_name!r}: expected_duration must be >= 0 seconds")
    if semantics not in SEMANTICS:
        raise ConfigurationError(
            f"step {step_name!r}: semantics must be one of {', '.join(SEMANTICS)}, "
            f"got {semantics!r}"
        )
    return StepSpec(
        name=step_name,
        retry=retry,
        expected_duration=float(expected_duration),
        result_type=return_annotation(fn),
        semantics=semantics,
    )


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> StepFunction[P, R]: ...  # type: ignore[overload-overlap]
@overload
def step(fn: Callable[P, R], /) -> SyncStepFunction[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    expected_duration: float = 0.0,
    semantics: Semantics = "at_least_once",
) -> _StepDecorator: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    expected_duration: float = 0.0,
    semantics: Semantics = "at_least_once",
) -> Any:
    """Make a function a durable step (sync or async).

    Args:
        fn: The function, when used as a bare ``@step``.
        name: The step's name in the journal; defaults to the function's name.
        retry: Retry policy; defaults to the task's.
        expected_duration: Seconds the step may take. When less time than this
            plus the safety margin is left before the Lambda deadline, the
            invocation checkpoints and continues in a fresh one first.
        semantics: ``"at_least_once"`` (default): an attempt cut by a crash runs
            again. ``"at_most_once"``: a STARTED record is written before the
            body (one more write per attempt); an attempt found started but
            unrecorded is never re-run, it fails with ``StepInterruptedError``
            and the retry policy decides what follows.

    Inside a task, await the step (sync or async): it runs once per run and
    its result is recorded. Outside a task, a sync step is a plain call and an
    async one returns its coroutine, so helpers stay unit-testable.

    The result must be JSON-serialisable (see :mod:`durable_lambda.serde`);
    with a return annotation it is validated into that type (``Annotated``
    constraints included) before it is recorded and again on replay.
    """
    decorate = _StepDecorator(name, retry, expected_duration, semantics)
    if fn is not None:
        return decorate(fn)
    return decorate
