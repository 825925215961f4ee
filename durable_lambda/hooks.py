"""Run-outcome hooks (``@task(on_success=..., on_failure=...)``), each journaled as a step.

A hook tells the world how the run ended: it runs once per run outcome. It is
recorded as a step of its own (``$on_success`` / ``$on_failure``), so a replay
after a crash between the hook and the run's checkpoint returns the record and
does not call the hook again. A hook that raises is recorded (the step's result
names the error) and logged, and the run's outcome stays what it was.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durable_lambda.engine.calls import StepSpec
from durable_lambda.engine.execution import current_execution
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError

if TYPE_CHECKING:
    from durable_lambda.context import TaskContext

Hook = Callable[[Any, Any, "TaskContext"], Any]
"""``hook(payload, output_or_error, ctx)``, sync or async; its return value is ignored."""

#: One attempt: a hook that failed is recorded as failed, not tried again.
_ONCE = RetryPolicy(max_attempts=1)

# The Powertools logger's own name (observability.SERVICE), without importing Powertools.
_log = logging.getLogger("durable-lambda")


def check_hook(task_id: str, option: str, hook: object) -> None:
    """Refuse a hook that cannot be called, at declaration.

    Raises:
        ConfigurationError: Naming the task and the option.
    """
    if hook is not None and not callable(hook):
        raise ConfigurationError(
            f"task {task_id!r}: {option} must be a callable (payload, output_or_error, ctx), "
            f"got {type(hook).__name__}"
        )


async def run_hook(option: str, hook: Hook, payload: Any, value: Any, ctx: TaskContext) -> None:
    """Call ``hook(payload, value, ctx)`` once per run, as the step ``$<option>``.

    Nothing happens while the invocation is stopping (a suspension is under way:
    the run has no outcome yet).
    """
    execution = current_execution()
    if execution is None or execution.stopping:
        return

    async def call() -> str | None:
        try:
            result = hook(payload, value, ctx)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - a hook never changes the run's outcome
            # The type only: the message may quote the payload.
            _log.warning(
                "task hook failed",
                extra={
                    "run_id": ctx.run_id,
                    "task_id": ctx.task_id,
                    "hook": option,
                    "error": type(exc).__name__,
                },
            )
            return f"{type(exc).__name__}: {exc}"
        return None

    spec = StepSpec(name=f"${option}", retry=_ONCE, result_type=str | None)
    await execution.call_step(spec, call)
