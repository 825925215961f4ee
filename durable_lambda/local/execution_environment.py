"""One emulated Lambda execution environment: a Python subprocess serving invocations."""

from __future__ import annotations

import contextlib
import enum
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from durable_lambda.local.protocol import decode, encode


class _Signal(enum.Enum):
    """What :meth:`ExecutionEnvironment._next` returns instead of a message."""

    DEADLINE = "deadline"
    EOF = "eof"


class InitError(Exception):
    """The environment could not import its handler (Lambda's init phase failed).

    Attributes:
        error_type: ``Runtime.ImportModuleError``, or ``Runtime.InitTimeout`` and
            ``Runtime.ExitError`` when the child hung or died while starting.
        traceback: The child's traceback, when it sent one.
    """

    def __init__(self, message: str, error_type: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback


class EnvironmentDiedError(Exception):
    """The environment exited during an invocation (SIGKILL, ``os._exit``, a crash)."""


class InvocationTimeoutError(Exception):
    """The invocation passed its deadline; the environment has been killed."""


@dataclass(frozen=True, slots=True)
class Spawn:
    """How to start an environment.

    Attributes:
        handler: ``module.function`` to serve.
        env: The complete environment of the subprocess.
        python: The interpreter.
        stderr: Where the child's stderr goes (a file opened for appending), or
            ``None`` to inherit the parent's.
        init_timeout: Seconds the handler import may take (Lambda allows 10).
    """

    handler: str
    env: Mapping[str, str]
    python: str = sys.executable
    stderr: IO[bytes] | None = None
    init_timeout: float = 10.0


class ExecutionEnvironment:
    """A subprocess that imported the handler once and runs one invocation at a time.

    Not thread-safe for invocations (the pool hands it to one caller at a
    time); :meth:`kill` and :meth:`kill_if_running` may be called from any thread.
    """

    def __init__(self, spawn: Spawn) -> None:
        """Start the child and wait for its init phase.

        Raises:
            InitError: The import failed, hung past ``init_timeout`` or the child died.
        """
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
        env = {**spawn.env, "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name}
        started = time.monotonic()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [spawn.python, "-m", "durable_lambda.local.runtime_child", spawn.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=spawn.stderr,
            env=env,
            start_new_session=True,
        )
        self.pid = self._process.pid
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: str | None = None
        self.killed_by: str | None = None
        threading.Thread(target=self._read, name=f"env-{self.pid}-stdout", daemon=True).start()
        ready = self._next(started + spawn.init_timeout)
        self.init_ms = (time.monotonic() - started) * 1000
        if ready is _Signal.DEADLINE:
            self.kill("init")
            raise InitError(
                f"init did not finish within {spawn.init_timeout:g} s", "Runtime.InitTimeout"
            )
        if ready is _Signal.EOF or not ready.get("ready"):
            self.close()
            details = {} if ready is _Signal.EOF else ready
            raise InitError(
                str(details.get("error") or f"runtime exited during init ({self._exit_status()})"),
                str(details.get("error_type") or "Runtime.ExitError"),
                details.get("traceback"),
            )

    @property
    def alive(self) -> bool:
        """The process is still running."""
        return self._process.poll() is None

    def invoke(self, request_id: str, event: Any, timeout: float) -> dict[str, Any]:
        """Run one invocation with a deadline ``timeout`` seconds from now.

        Returns:
            The child's response (``ok``, ``result`` or ``error``...).

        Raises:
            InvocationTimeoutError: Past the deadline; the child has been SIGKILLed.
            EnvironmentDiedError: The child exited before answering.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._current = request_id
        try:
            request = {"request_id": request_id, "event": event, "deadline_ms": _epoch_ms(timeout)}
            try:
                stdin = self._process.stdin
                if stdin is None:  # pragma: no cover - always a pipe
                    raise EnvironmentDiedError("no stdin pipe")
                stdin.write(encode(request))
                stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise EnvironmentDiedError(self._died_message()) from exc
            while True:
                response = self._next(deadline)
                if response is _Signal.DEADLINE:
                    self.kill("timeout")
                    raise InvocationTimeoutError(f"Task timed out after {timeout:.2f} seconds")
                if response is _Signal.EOF:
                    raise EnvironmentDiedError(self._died_message())
                if response.get("request_id") == request_id:
                    return response
        finally:
            with self._lock:
                self._current = None

    def kill(self, reason: str) -> None:
        """SIGKILL the process, as Lambda does to a timed-out environment."""
        with self._lock:
            self._kill_locked(reason)

    def kill_if_running(self, request_id: str | None, reason: str) -> bool:
        """SIGKILL the process if it is running ``request_id`` (any invocation when ``None``)."""
        with self._lock:
            if self._current is None or (request_id is not None and self._current != request_id):
                return False
            return self._kill_locked(reason)

    @property
    def busy(self) -> bool:
        """An invocation is in progress."""
        with self._lock:
            return self._current is not None

    def close(self, grace: float = 1.0) -> None:
        """Close the child's input so it exits; SIGKILL it if alive after ``grace`` seconds."""
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill("shutdown")
            self._process.wait()

    def _kill_locked(self, reason: str) -> bool:
        if self._process.poll() is not None:
            return False
        self.killed_by = self.killed_by or reason
        self._process.send_signal(signal.SIGKILL)
        return True

    def _read(self) -> None:
        stdout = self._process.stdout
        if stdout is not None:
            for line in stdout:
                self._lines.put(line)
        self._lines.put(None)

    def _next(self, deadline: float) -> dict[str, Any] | _Signal:
        """The next message from the child, or why there is none."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _Signal.DEADLINE
        try:
            line = self._lines.get(timeout=remaining)
        except queue.Empty:
            return _Signal.DEADLINE
        if line is None:
            self._lines.put(None)  # stay at end of input for any later read
            return _Signal.EOF
        return decode(line)

    def _exit_status(self) -> str:
        try:
            code = self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    def _died_message(self) -> str:
        cause = f" ({self.killed_by})" if self.killed_by else ""
        return f"Runtime exited with error: {self._exit_status()}{cause}"


def _epoch_ms(timeout: float) -> int:
    return int((time.time() + timeout) * 1000)
