"""``@task``: declare a durable task and keep it in the registry workers look tasks up in."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import typing
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar, Unpack, overload

from pydantic import ValidationError

from durable_lambda import serde
from durable_lambda.cron import validate_cron
from durable_lambda.engine.children import ChildStart, trigger_children, wait_children
from durable_lambda.engine.execution import Execution, current_execution, current_step
from durable_lambda.engine.retry import RetryPolicy
from durable_lambda.errors import (
    ConfigurationError,
    PayloadValidationError,
    TerminalError,
    UnknownTaskError,
)
from durable_lambda.hooks import Hook, check_hook, run_hook
from durable_lambda.queue import Queue
from durable_lambda.result import RunResult

if TYPE_CHECKING:
    from durable_lambda.context import TaskContext

P = TypeVar("P")
R = TypeVar("R")

TaskFunction = Callable[..., Coroutine[Any, Any, Any]]

#: Task ids use the queue-name alphabet: they go into storage keys where ``#``
#: separates parts, into log lines and into URLs, so no separators, spaces or
#: control characters.
_TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True, slots=True)
class RunHandle:
    """A triggered run.

    Attributes:
        run_id: The run's id.
        task_id: Its task.
        cached: True when an idempotency key matched an earlier run, which is returned.
    """

    run_id: str
    task_id: str
    cached: bool = False


class TriggerOptions(TypedDict, total=False):
    """The options of a trigger; :meth:`durable_lambda.client.Client.trigger` documents each."""

    idempotency_key: str | None
    idempotency_key_ttl: dt.timedelta | float | None
    delay: dt.timedelta | float | None
    ttl: dt.timedelta | float | None
    tags: Sequence[str]
    concurrency_key: str | None
    priority: int
    queue: str | None


class Trigger(Protocol):
    """What starts runs: a :class:`~durable_lambda.client.Client`, or a test double."""

    def trigger(
        self, task: Task[Any, Any], payload: Any, /, **options: Unpack[TriggerOptions]
    ) -> RunHandle:
        """Start a run of ``task`` with ``payload``."""
        ...


def _validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


@dataclass(frozen=True, slots=True, eq=False)
class Task(Generic[P, R]):
    """A durable task. Created by :func:`task`; trigger it or run it with a runner.

    Attributes:
        id: Unique id of the task; runs refer to it, so keep it stable across deploys.
        fn: The ``async def (payload, ctx)`` function.
        retry: Policy for task-level retries and the default for its steps.
        queue: The queue its runs line up in.
        max_duration: Upper bound on the run's total wall time, if any.
        payload_type: The payload annotation (``Any`` when absent).
        output_type: The return annotation (``Any`` when absent).
        on_success: Called as ``(payload, output, ctx)`` once the run completes.
        on_failure: Called as ``(payload, error, ctx)`` once the run fails for good.
    """

    id: str
    fn: TaskFunction
    retry: RetryPolicy
    queue: Queue
    max_duration: dt.timedelta | None
    payload_type: Any
    output_type: Any
    takes_context: bool
    cron: str | None = None
    timezone: str = "UTC"
    on_success: Hook | None = None
    on_failure: Hook | None = None

    def validate_payload(self, payload: Any) -> Any:
        """Validate ``payload`` against the task's annotation and return it typed.

        Raises:
            PayloadValidationError: Naming each field that does not fit.
        """
        try:
            return serde.adapter_for(self.payload_type).validate_python(payload)
        except ValidationError as exc:
            raise PayloadValidationError(self.id, "payload", _validation_errors(exc)) from exc

    def encode_payload(self, payload: Any) -> str:
        """Validate ``payload`` and encode it for storage (JSON text)."""
        return serde.encode(self.validate_payload(payload))

    def decode_payload(self, text: str) -> Any:
        """Decode a stored payload and validate it again (the code may have changed)."""
        return self.validate_payload(serde.decode(text))

    def validate_output(self, output: Any) -> Any:
        """Check the return value against the task's return annotation."""
        try:
            return serde.adapter_for(self.output_type).validate_python(output)
        except ValidationError as exc:
            raise PayloadValidationError(self.id, "output", _validation_errors(exc)) from exc

    def invoke(self, payload: Any, ctx: TaskContext) -> Coroutine[Any, Any, Any]:
        """The coroutine of one execution of the task body (output validated)."""

        async def body() -> Any:
            try:
                if self.takes_context:
                    output = self.validate_output(await self.fn(payload, ctx))
                else:
                    output = self.validate_output(await self.fn(payload))
            except Exception as exc:
                if self.on_failure is not None and self._fails_for_good(exc, ctx.attempt):
                    await run_hook("on_failure", self.on_failure, payload, exc, ctx)
                raise
            if self.on_success is not None:
                await run_hook("on_success", self.on_success, payload, output, ctx)
            return output

        return body()

    def _fails_for_good(self, error: Exception, attempt: int) -> bool:
        """Whether ``error`` raised by attempt ``attempt`` of the body ends the run FAILED."""
        return isinstance(error, TerminalError) or not self.retry.decide(attempt, error).retry

    def trigger(self, payload: P, **options: Unpack[TriggerOptions]) -> RunHandle:
        """Start a run from any Python process with AWS credentials, or a child inside a task.

        Outside a task it goes through the default trigger (see
        :func:`set_default_trigger`): the process's client on AWS for the
        environment's settings, built once. Inside a running task (outside a
        step body) the trigger is journaled: the child links to its parent, and
        replay returns the same child without triggering again.
        :meth:`Client.trigger <durable_lambda.client.Client.trigger>` documents
        the options.

        Raises:
            PayloadValidationError: The payload does not fit; nothing is created.
            ChildDepthExceeded: Inside a task, the child would nest too deep.
            ConfigurationError: No default trigger is installed.
        """
        execution = _parent_execution()
        if execution is not None:
            (run_id,) = trigger_children(execution, self.id, [self._child(payload, options)])
            return RunHandle(run_id, self.id)
        return self._trigger_outside(payload, options)

    def batch_trigger(
        self, payloads: Sequence[P], **options: Unpack[TriggerOptions]
    ) -> list[RunHandle]:
        """Start one run per payload; inside a task, journaled as one call.

        Every payload is validated before anything is created.
        """
        execution = _parent_execution()
        if execution is None:
            for payload in payloads:
                self.validate_payload(payload)
            return [self._trigger_outside(payload, options) for payload in payloads]
        starts = [self._child(payload, options) for payload in payloads]
        return [
            RunHandle(run_id, self.id) for run_id in trigger_children(execution, self.id, starts)
        ]

    async def trigger_and_wait(
        self, payload: P, *, name: str | None = None, **options: Unpack[TriggerOptions]
    ) -> RunResult:
        """Trigger a child run and wait for it to end, inside a task.

        The parent suspends while the child runs (no Lambda time, its
        concurrency unit given back) and resumes when the child ends. A child
        failure is a value: ``RunResult.unwrap()`` raises ``RunFailedError``.

        Args:
            payload: The child's payload, validated here.
            name: The call's name in the journal (default: the task's id).
            **options: Trigger options, as for :meth:`trigger`.
        """
        (result,) = await self._wait("trigger_and_wait", [payload], name, options)
        return result

    async def batch_trigger_and_wait(
        self, payloads: Sequence[P], *, name: str | None = None, **options: Unpack[TriggerOptions]
    ) -> list[RunResult]:
        """Trigger up to 1,000 child runs and wait for all; results in input order."""
        return await self._wait("batch_trigger_and_wait", payloads, name, options)

    async def _wait(
        self, what: str, payloads: Sequence[Any], name: str | None, options: Any
    ) -> list[RunResult]:
        execution = _parent_execution()
        if execution is None:
            raise ConfigurationError(f"{self.id}.{what} can only be awaited inside a running task")
        starts = [self._child(payload, options) for payload in payloads]
        states = await wait_children(execution, name or self.id, starts)
        return [
            RunResult(
                run_id=state.run_id,
                status=state.status,
                output=None
                if state.output is None
                else serde.decode(state.output, self.output_type),
                error=state.error,
            )
            for state in states
        ]

    def _child(self, payload: Any, options: Any) -> ChildStart:
        """A child to start: its payload validated now, in the parent, at the trigger's line."""
        return ChildStart(self, self.validate_payload(payload), dict(options))

    def _trigger_outside(self, payload: Any, options: Any) -> RunHandle:
        if _default_trigger is None:
            raise ConfigurationError(
                f"task {self.id!r}: no default trigger is installed; import durable_lambda "
                "(it installs the AWS client) or call set_default_trigger()"
            )
        return _default_trigger().trigger(self, payload, **options)


#: Where ``Task.trigger`` gets what starts its runs (see ``set_default_trigger``).
_default_trigger: Callable[[], Trigger] | None = None


def _parent_execution() -> Execution | None:
    """The execution of the running task, unless in a step body (a side effect there)."""
    execution = current_execution()
    return execution if execution is not None and current_step() is None else None


def set_default_trigger(source: Callable[[], Trigger] | None) -> Callable[[], Trigger] | None:
    """Install what :meth:`Task.trigger` starts runs with; returns the one it replaces.

    This is the one seam between a task and the runtime. The client, worker
    and scheduler import this module, so it cannot import them back: instead
    the package's ``__init__`` installs ``durable_lambda.services.default_client``
    here, the memoised client on AWS. A test may install another source (a
    ``LocalRunner``'s client) and must put the returned one back.

    Args:
        source: Called on every trigger; returns the client to use (``None``: none).
    """
    global _default_trigger  # the documented process-wide seam
    previous, _default_trigger = _default_trigger, source
    return previous


class TaskRegistry:
    """Tasks by id. Workers look up the task of each run here."""

    def __init__(self) -> None:
        """Start empty."""
        self._tasks: dict[str, Task[Any, Any]] = {}

    def add(self, task_: Task[Any, Any]) -> None:
        """Register ``task_``; a second, different function under the same id is an error."""
        existing = self._tasks.get(task_.id)
        if existing is not None and _origin(existing.fn) != _origin(task_.fn):
            raise ConfigurationError(
                f"task id {task_.id!r} is already used by {_origin(existing.fn)}; "
                f"cannot register {_origin(task_.fn)} under it"
            )
        self._tasks[task_.id] = task_

    def get(self, task_id: str) -> Task[Any, Any]:
        """The task with ``task_id``.

        Raises:
            UnknownTaskError: None is registered (check ``DL_TASK_MODULES``).
        """
        try:
            return self._tasks[task_id]
        except KeyError:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise UnknownTaskError(
                f"no task {task_id!r} is registered in this process (registered: {known})"
            ) from None

    def ids(self) -> list[str]:
        """The registered ids, sorted."""
        return sorted(self._tasks)

    def tasks(self) -> list[Task[Any, Any]]:
        """The registered tasks, by id."""
        return [self._tasks[task_id] for task_id in sorted(self._tasks)]

    def queue(self, name: str, task_: Task[Any, Any] | None = None) -> Queue:
        """The configuration of queue ``name``.

        The task's own queue when the names match; else the first task declaring
        a queue of that name (a run triggered with ``queue=``); else an
        unlimited queue of that name.
        """
        if task_ is not None and task_.queue.name == name:
            return task_.queue
        for candidate in self._tasks.values():
            if candidate.queue.name == name:
                return candidate.queue
        return Queue(name=name)


def _origin(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


#: The process-wide registry ``@task`` adds to unless given ``registry=``.
default_registry = TaskRegistry()


class TaskDecorator(Protocol):
    """What ``@task(...)`` returns: it turns the function into a ``Task[payload, output]``.

    The types come from the function's annotations, so ``my_task.trigger``
    checks its payload statically as well as at runtime.
    """

    @overload
    def __call__(self, fn: Callable[[P, TaskContext], Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[[P], Coroutine[Any, Any, R]], /) -> Task[P, R]: ...


def _annotations(fn: TaskFunction) -> tuple[Any, Any, bool]:
    params = list(inspect.signature(fn).parameters.values())
    if not 1 <= len(params) <= 2:  # noqa: PLR2004 - (payload) or (payload, ctx)
        raise ConfigurationError(
            f"task function {fn.__qualname__} must take (payload) or (payload, ctx), "
            f"it takes {len(params)} parameters"
        )
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError) as exc:
        raise ConfigurationError(f"cannot resolve annotations of {fn.__qualname__}: {exc}") from exc
    payload_type = hints.get(params[0].name, Any)
    output_type = hints.get("return", Any)
    return payload_type, output_type, len(params) == 2  # noqa: PLR2004


def task(
    *,
    id: str,  # noqa: A002 - the public option name
    retry: RetryPolicy | None = None,
    queue: Queue | None = None,
    max_duration: dt.timedelta | float | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
    registry: TaskRegistry | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
) -> TaskDecorator:
    """Declare a durable task.

    Args:
        id: Unique, stable id (runs store it; renaming strands in-flight runs):
            1-128 letters, digits and ``_.:-``.
        retry: Retry policy for the task body and default for its steps.
        queue: Queue configuration; defaults to a queue named after the task.
        max_duration: Upper bound on the run's wall time (seconds or timedelta).
        cron: A cron expression (``"*/5 * * * *"``); the scheduler function starts
            one run per occurrence, exactly once, with a ``ScheduledPayload``.
        timezone: The IANA timezone the cron expression is read in.
        registry: Registry to add to; defaults to the process-wide ``default_registry``.
        on_success: ``hook(payload, output, ctx)``, sync or async, called once when
            the run completes (journaled as the step ``$on_success``).
        on_failure: ``hook(payload, error, ctx)``, called once when the task body's
            error fails the run for good (not on attempts the task retries).
            A hook that raises is recorded and logged; the run's outcome stands.

    The function must be ``async def f(payload, ctx)`` (``ctx`` optional). Its
    payload annotation validates input on trigger and on every resume; its
    return annotation validates the output.
    """
    if not _TASK_ID.fullmatch(id):
        raise ConfigurationError(
            f"task id {id!r} must be 1-128 characters of letters, digits and _.:- "
            f"(got {len(id)} characters)"
        )
    if isinstance(max_duration, int | float):
        max_duration = dt.timedelta(seconds=max_duration)
    if cron is not None:
        validate_cron(cron, timezone)
    check_hook(id, "on_success", on_success)
    check_hook(id, "on_failure", on_failure)

    def decorate(fn: TaskFunction) -> Task[Any, Any]:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"task {id!r}: {fn.__qualname__} must be an async def")
        payload_type, output_type, takes_context = _annotations(fn)
        definition: Task[Any, Any] = Task(
            id=id,
            fn=fn,
            retry=retry or RetryPolicy(),
            queue=queue or Queue(name=re.sub(r"[^A-Za-z0-9_.:-]", "-", id)[:80]),
            max_duration=max_duration,
            payload_type=payload_type,
            output_type=output_type,
            takes_context=takes_context,
            cron=cron,
            timezone=timezone,
            on_success=on_success,
            on_failure=on_failure,
        )
        (registry or default_registry).add(definition)
        return definition

    return decorate
