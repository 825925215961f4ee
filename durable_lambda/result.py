"""RunResult: the outcome of a run as its caller sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import DurableLambdaError


class RunFailedError(DurableLambdaError):
    """Raised by :meth:`RunResult.unwrap` for a run that did not complete."""

    def __init__(self, run_id: str, status: RunStatus, error: ErrorInfo | None) -> None:
        self.run_id = run_id
        self.status = status
        self.error = error
        what = f"{error.type}: {error.message}" if error else "no error recorded"
        super().__init__(f"run {run_id} ended {status.value}: {what}")


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run.

    Attributes:
        run_id: The run.
        status: Its final status.
        output: The task's return value when it completed, else ``None``.
        error: What failed it, else ``None``.
    """

    run_id: str
    status: RunStatus
    output: Any = None
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.status is RunStatus.COMPLETED

    def unwrap(self) -> Any:
        """The output of a completed run.

        Raises:
            RunFailedError: The run failed, was canceled or expired.
        """
        if not self.ok:
            raise RunFailedError(self.run_id, self.status, self.error)
        return self.output
