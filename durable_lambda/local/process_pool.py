"""A Lambda function emulated as a pool of subprocess execution environments.

Like Lambda: an environment imports the handler once (cold start) and is then
reused (warm); at most ``reserved_concurrency`` invocations run at once (more
wait for a free environment); an invocation past its timeout has its
environment SIGKILLed and the next invocation starts a fresh one.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from durable_lambda.local.execution_environment import (
    EnvironmentDiedError,
    ExecutionEnvironment,
    InitError,
    InvocationTimeoutError,
    Spawn,
)
from durable_lambda.local.function_config import Chaos, FunctionConfig

#: The directory holding the ``durable_lambda`` package, put on the child's path.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "PROJECT_ROOT",
    "Chaos",
    "FunctionConfig",
    "FunctionPool",
    "InvocationResult",
    "PoolClosedError",
    "PoolStats",
]


class PoolClosedError(RuntimeError):
    """An invocation was asked of a pool that has been closed."""


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """The outcome of one invocation.

    Attributes:
        request_id: The invocation's request id.
        ok: The handler returned (``result`` holds its JSON value).
        result: The handler's return value.
        error: ``Type: message`` when not ok.
        error_type: The exception type, or ``Runtime.*`` / ``Sandbox.Timedout``.
        traceback: The handler's traceback, when there is one.
        cold: A new environment was started for this invocation.
        timed_out: The invocation passed its timeout and was killed.
        killed: The environment died during the invocation (timeout, chaos, crash).
        pid: The environment's process id.
        init_ms: The init phase's duration, on a cold start.
        duration_ms: From sending the event to reading the response.
    """

    request_id: str
    ok: bool
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    cold: bool = False
    timed_out: bool = False
    killed: bool = False
    pid: int | None = None
    init_ms: float | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Counters of a pool since it started.

    Attributes:
        invocations: Invocations finished (any outcome).
        cold_starts: Invocations that started a new environment.
        warm_starts: Invocations served by an existing environment.
        errors: Invocations that did not return a result (any cause).
        timeouts: Invocations killed at their timeout.
        kills: SIGKILLs sent (timeouts, chaos, :meth:`FunctionPool.kill_random_after`).
        crashes: Environments that died during an invocation (killed or not).
        busy: Invocations running now.
        max_busy: Most invocations ever running at once.
        environments: Live environments now.
    """

    invocations: int = 0
    cold_starts: int = 0
    warm_starts: int = 0
    errors: int = 0
    timeouts: int = 0
    kills: int = 0
    crashes: int = 0
    busy: int = 0
    max_busy: int = 0
    environments: int = 0


class FunctionPool:
    """Runs invocations of one function in at most ``reserved_concurrency`` subprocesses."""

    def __init__(self, config: FunctionConfig) -> None:
        """Prepare the pool; environments start on first use (or :meth:`prewarm`)."""
        self.config = config
        self._slots = threading.BoundedSemaphore(config.reserved_concurrency)
        self._lock = threading.Lock()
        self._idle: list[ExecutionEnvironment] = []  # LIFO: the warmest is reused first
        self._all: set[ExecutionEnvironment] = set()
        # Environments started before the last recycle() (a deploy) serve no new invocation.
        self._retired: set[ExecutionEnvironment] = set()
        self._counts: dict[str, int] = dict.fromkeys(PoolStats.__dataclass_fields__, 0)
        self._rng = random.Random(config.chaos.seed if config.chaos else None)  # noqa: S311 - chaos, not crypto
        self._closed = False
        self._log: IO[bytes] | None = None
        self.log_path: Path | None = None
        if not config.inherit_stderr:
            self.log_path = config.log_path or Path(
                tempfile.mkdtemp(prefix="durable-lambda-local-"), f"{config.name}.log"
            )
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._env = self._child_env()

    @property
    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        with self._lock:
            return PoolStats(**{**self._counts, "environments": len(self._all)})

    def invoke(self, event: Any, *, request_id: str | None = None) -> InvocationResult:
        """Invoke the function synchronously; wait for a free environment first if all are busy.

        Raises:
            PoolClosedError: The pool is closed.
        """
        request_id = request_id or str(uuid.uuid4())
        self._slots.acquire()
        try:
            self._enter()
            try:
                result = self._invoke_in_slot(request_id, event)
            finally:
                self._leave()
        finally:
            self._slots.release()
        with self._lock:
            self._counts["invocations"] += 1
            self._counts["errors"] += 0 if result.ok else 1
            self._counts["timeouts"] += int(result.timed_out)
            self._counts["crashes"] += int(result.killed)
        return result

    def prewarm(self, count: int = 1) -> None:
        """Start ``count`` idle environments now (like provisioned concurrency)."""
        started = [self._spawn() for _ in range(min(count, self.config.reserved_concurrency))]
        with self._lock:
            self._idle.extend(started)

    def recycle(self) -> None:
        """Retire every environment, as a deploy does: later invocations cold start on new code.

        Idle environments stop now; busy ones finish their invocation on the
        code they imported, then stop instead of serving another.
        """
        with self._lock:
            self._retired |= self._all
            idle, self._idle = self._idle, []
        for environment in idle:
            self._discard(environment)

    def kill_random_after(self, seconds: float) -> threading.Timer:
        """SIGKILL one environment after ``seconds``: a busy one if any, else an idle one.

        Returns:
            The started timer (``cancel()`` it to call the kill off).
        """
        timer = threading.Timer(seconds, self._kill_random)
        timer.daemon = True
        timer.start()
        return timer

    def close(self) -> None:
        """Stop every environment (busy ones are killed); later invocations raise."""
        with self._lock:
            self._closed = True
            environments, self._idle = list(self._all), []
        for environment in environments:
            if environment.busy:
                environment.kill("shutdown")
            environment.close(grace=0.5)
        with self._lock:
            self._all.clear()
            self._retired.clear()
        if self._log is not None:
            self._log.close()

    def _invoke_in_slot(self, request_id: str, event: Any) -> InvocationResult:
        cold = False
        init_ms: float | None = None
        with self._lock:
            if self._closed:
                raise PoolClosedError(f"function pool {self.config.name!r} is closed")
            environment = self._idle.pop() if self._idle else None
        if environment is None or not environment.alive:
            if environment is not None:
                self._discard(environment)
            cold = True
            try:
                environment = self._spawn()
            except InitError as exc:
                self._count("cold_starts")
                return InvocationResult(
                    request_id,
                    ok=False,
                    error=str(exc),
                    error_type=exc.error_type,
                    traceback=exc.traceback,
                    cold=True,
                )
            init_ms = environment.init_ms
        self._count("cold_starts" if cold else "warm_starts")
        started = time.monotonic()
        chaos_timer = self._arm_chaos(environment, request_id)
        try:
            response = environment.invoke(request_id, event, self.config.timeout)
        except (InvocationTimeoutError, EnvironmentDiedError) as exc:
            self._discard(environment)
            timed_out = isinstance(exc, InvocationTimeoutError)
            self._write_log(f"RequestId: {request_id} Error: {exc}")
            return InvocationResult(
                request_id,
                ok=False,
                error=str(exc),
                error_type="Sandbox.Timedout" if timed_out else "Runtime.ExitError",
                cold=cold,
                timed_out=timed_out,
                killed=True,
                pid=environment.pid,
                init_ms=init_ms,
                duration_ms=(time.monotonic() - started) * 1000,
            )
        finally:
            if chaos_timer is not None:
                chaos_timer.cancel()
        self._release(environment)
        return InvocationResult(
            request_id,
            ok=bool(response.get("ok")),
            result=response.get("result"),
            error=response.get("error"),
            error_type=response.get("error_type"),
            traceback=response.get("traceback"),
            cold=cold,
            pid=environment.pid,
            init_ms=init_ms,
            duration_ms=(time.monotonic() - started) * 1000,
        )

    def _spawn(self) -> ExecutionEnvironment:
        spawn = Spawn(
            handler=self.config.handler,
            env=self._env,
            python=self.config.python,
            stderr=self._log,
            init_timeout=self.config.init_timeout,
        )
        environment = ExecutionEnvironment(spawn)
        with self._lock:
            self._all.add(environment)
            closed = self._closed
        if closed:
            self._discard(environment)
            raise PoolClosedError(f"function pool {self.config.name!r} is closed")
        return environment

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            if not self._closed and environment.alive and environment not in self._retired:
                self._idle.append(environment)
                return
        self._discard(environment)

    def _discard(self, environment: ExecutionEnvironment) -> None:
        """Forget ``environment`` and stop it; idempotent, so a kill is counted once."""
        with self._lock:
            if environment not in self._all:
                return
            self._all.discard(environment)
            self._retired.discard(environment)
            if environment in self._idle:
                self._idle.remove(environment)
            self._counts["kills"] += int(environment.killed_by is not None)
        environment.close(grace=0.5)

    def _arm_chaos(
        self, environment: ExecutionEnvironment, request_id: str
    ) -> threading.Timer | None:
        chaos = self.config.chaos
        if chaos is None:
            return None
        with self._lock:
            if self._rng.random() >= chaos.probability:
                return None
            delay = self._rng.uniform(0.0, self.config.timeout)
        timer = threading.Timer(delay, environment.kill_if_running, (request_id, "chaos"))
        timer.daemon = True
        timer.start()
        return timer

    def _kill_random(self) -> None:
        with self._lock:
            candidates = list(self._all)
            busy = [environment for environment in candidates if environment.busy]
            pool = busy or candidates
            victim = self._rng.choice(pool) if pool else None
        if victim is not None:
            victim.kill("kill_random_after")
            if not victim.busy:
                self._discard(victim)

    def _enter(self) -> None:
        with self._lock:
            self._counts["busy"] += 1
            self._counts["max_busy"] = max(self._counts["max_busy"], self._counts["busy"])

    def _leave(self) -> None:
        with self._lock:
            self._counts["busy"] -= 1

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _write_log(self, line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {line}\n"
        if self._log is not None and not self._log.closed:
            self._log.write(stamped.encode())
            self._log.flush()
        elif self._log is None:
            sys.stderr.write(stamped)

    def _child_env(self) -> dict[str, str]:
        config = self.config
        inherited = os.environ.get("PYTHONPATH", "")
        paths = [*config.pythonpath, str(PROJECT_ROOT), *filter(None, inherited.split(os.pathsep))]
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
            "LAMBDA_TASK_ROOT": str(PROJECT_ROOT),
            "_HANDLER": config.handler,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            # Never let an emulated function pick up the developer's real AWS profile.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": config.name,
            **config.env,
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
