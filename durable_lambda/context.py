"""TaskContext: what a running task knows about its run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from durable_lambda.engine.execution import current_execution, current_step
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import ConfigurationError
from durable_lambda.step import make_spec


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Passed to a task as its second argument.

    Attributes:
        run_id: The run's id.
        task_id: The task's id.
        attempt: The run's attempt, from 1; a task-level retry increments it.
        tags: Tags given at trigger time.
        concurrency_key: The concurrency key given at trigger time, if any.
    """

    run_id: str
    task_id: str
    attempt: int = 1
    tags: tuple[str, ...] = ()
    concurrency_key: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

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
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` as an ad-hoc step named ``name``.

        Like a ``@step`` function: journaled, retried per ``retry`` (default: the
        task's policy), and executed at most once per run unless a crash hits
        between its side effect and its record.
        """
        execution = current_execution()
        if execution is None:
            raise ConfigurationError("ctx.step can only be awaited inside a running task")
        spec = make_spec(fn, name, retry, expected_duration)
        return await execution.call_step(spec, fn, args, kwargs)
