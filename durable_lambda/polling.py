"""``wait.for_condition``: poll an outside system without holding a Lambda between checks.

Each check is a step (journaled, retried per its policy) and each pause
between checks is a wait (recorded with its wake time), so a replay returns
the recorded states and pauses without calling the outside system again, and
a long pause costs no Lambda time: the run suspends and SQS (or the timer
index) brings it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from durable_lambda.engine.calls import StepSpec
from durable_lambda.engine.execution import current_execution
from durable_lambda.engine.polling import WaitStrategy
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConditionNotMetError, ConfigurationError
from durable_lambda.step import make_spec

S = TypeVar("S")

#: The checks' step name when neither ``name`` nor the function gives one (a lambda).
DEFAULT_NAME = "condition"


def for_condition(
    check: Callable[[S], S] | Callable[[S], Awaitable[S]],
    *,
    until: Callable[[S], bool],
    initial_state: S | None = None,
    strategy: WaitStrategy | None = None,
    name: str | None = None,
    retry: RetryPolicy | None = None,
) -> Coroutine[Any, Any, S]:
    """Check an outside condition until it holds, pausing between checks; await the result.

    ``check(state)`` (sync or async) runs as a step and returns the new state;
    ``until(state)`` decides, in the task, whether to stop. Between checks the
    run waits ``strategy``'s delay as ``wait.for_`` does (a long one suspends
    the run). A check that meets the condition at once waits zero times.

    Args:
        check: Takes the state (``initial_state`` first, then what the last
            check returned) and returns the next one; its return annotation,
            when given, validates the state as a step result's does.
        until: Whether a state meets the condition.
        initial_state: The state the first check receives.
        strategy: Delays and the most checks made (default ``WaitStrategy()``:
            5 s, growing by 1.5 up to 300 s, 60 checks).
        name: The checks' step name (default: the function's name).
        retry: The check step's retry policy (default: the task's).

    Returns:
        The first state that meets the condition.

    Raises:
        ConditionNotMetError: The last of ``strategy.max_attempts`` checks did
            not meet it; ``.state`` holds the state that check returned.
        StepFailedError: A check raised on its last attempt.
        ConfigurationError: Arguments of the wrong kind, or awaited outside a task.
    """
    if not callable(check) or not callable(until):
        raise ConfigurationError("wait.for_condition needs a callable check and until=")
    strategy = WaitStrategy() if strategy is None else strategy
    if not isinstance(strategy, WaitStrategy):
        raise ConfigurationError(
            f"wait.for_condition strategy must be a WaitStrategy, got {type(strategy).__name__}"
        )
    label = name or getattr(check, "__name__", None) or DEFAULT_NAME
    if label == "<lambda>":
        label = DEFAULT_NAME
    spec = make_spec(check, label, retry, 0.0)
    return _poll(spec, check, until, initial_state, strategy)


async def _poll(
    spec: StepSpec,
    check: Callable[..., Any],
    until: Callable[[Any], bool],
    state: Any,
    strategy: WaitStrategy,
) -> Any:
    execution = current_execution()
    if execution is None:
        raise ConfigurationError("wait.for_condition can only be awaited inside a running task")
    for attempt in range(1, strategy.max_attempts + 1):
        state = await execution.call_step(spec, check, (state,))
        if until(state):
            return state
        if attempt < strategy.max_attempts:
            # On replay the recorded wake time wins over this draw, so jitter replays exactly.
            delay = strategy.delay(attempt, execution.env.rng)
            await execution.wait_until(execution.env.now() + dt.timedelta(seconds=delay))
    raise ConditionNotMetError(spec.name, strategy.max_attempts, state)
