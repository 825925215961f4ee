"""X-Ray traces of runs: a plugin that opens a subsegment per invocation and per step attempt.

Each subsegment is annotated with the run id and task id (annotations are
indexed: a trace search ``annotation.run_id = "run_..."`` finds a run's
invocations), the step's key and attempt, and how it ended; never arguments,
results or error messages. A step's subsegment is written when its attempt
ends, back-dated to when it started: steps of parallel branches overlap in
time, and X-Ray's context nests only what opens and closes in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from durable_lambda.plugins import EventInfo, EventOutcome

#: X-Ray's limit on a subsegment name.
MAX_NAME = 200


class TraceProvider(Protocol):
    """What the plugin needs of a tracer: Powertools' ``Tracer().provider`` (X-Ray) has it."""

    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Any:
        """A context manager that opens a subsegment and yields it (or ``None``)."""
        ...


@dataclass(slots=True)
class RunTraces:
    """A plugin writing a run's invocations and step attempts as subsegments.

    Attributes:
        provider: Opens subsegments (``aws_lambda_powertools.Tracer().provider``).
    """

    provider: TraceProvider
    _open: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _began: dict[tuple[str, str | None], float] = field(default_factory=dict)

    def on_invocation_start(self, info: EventInfo) -> None:
        """Open the invocation's subsegment: the steps it runs nest under it."""
        self._close(info.run_id, None)  # one left open by an invocation that raised
        manager = self.provider.in_subsegment(name=_name(f"## run {info.task_id}"))
        segment = manager.__enter__()
        _annotate(segment, info)
        if segment is not None:
            segment.put_annotation("first_invocation", info.first_invocation)
        self._open[info.run_id] = (manager, segment)

    def on_invocation_end(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Close the invocation's subsegment, annotated with how it ended."""
        self._close(info.run_id, outcome.status.value)

    def on_step_start(self, info: EventInfo) -> None:
        """Note when the attempt began (wall clock: X-Ray's time)."""
        self._began[(info.run_id, info.step_key)] = time.time()

    def on_attempt(self, info: EventInfo, outcome: EventOutcome) -> None:
        """Write the attempt's subsegment, from its start to now."""
        began = self._began.pop((info.run_id, info.step_key), None)
        with self.provider.in_subsegment(name=_name(f"## step {info.step_key}")) as segment:
            if segment is None:
                return
            if began is not None and hasattr(segment, "start_time"):
                segment.start_time = began
            _annotate(segment, info)
            segment.put_annotation("step", info.step_key or "")
            segment.put_annotation("attempt", info.attempt)
            segment.put_annotation("outcome", outcome.status.value)
            if outcome.error is not None:
                segment.put_annotation("error_type", outcome.error.type[:MAX_NAME])

    def _close(self, run_id: str, outcome: str | None) -> None:
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        manager, segment = opened
        if segment is not None and outcome is not None:
            segment.put_annotation("outcome", outcome)
        manager.__exit__(None, None, None)


def _annotate(segment: Any, info: EventInfo) -> None:
    if segment is not None:
        segment.put_annotation("run_id", info.run_id)
        segment.put_annotation("task_id", info.task_id)


def _name(text: str) -> str:
    return text[:MAX_NAME]
