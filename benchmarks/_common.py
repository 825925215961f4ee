"""Shared benchmark helpers: the one-JSON-object-per-line output format."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def emit(figure: str, value: float, unit: str, **extra: object) -> None:
    """Print one figure as ``{"figure", "value", "unit"}`` JSON on its own line."""
    record: dict[str, object] = {"figure": figure, "value": round(value, 3), "unit": unit}
    record.update(extra)
    print(json.dumps(record), flush=True)


def emit_median(figure: str, samples: list[float], unit: str, **extra: object) -> None:
    """Emit the median of ``samples`` with their min and max beside it (a noisy host shows)."""
    emit(
        figure,
        statistics.median(samples),
        unit,
        **extra,
        min=round(min(samples), 1),
        max=round(max(samples), 1),
    )


def progress(message: str) -> None:
    """Progress for humans, on stderr so stdout stays machine-readable."""
    print(f"# {message}", file=sys.stderr, flush=True)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of ``runs`` calls of ``measure``."""
    return statistics.median(measure() for _ in range(runs))


def handle_message(worker: Any, body: str, timeout: float = 900.0) -> Any:
    """One Lambda invocation of ``worker`` for a resume message's ``body``; its report."""
    from durable_lambda.messages import decode_message  # noqa: PLC0415 - keep this module light
    from durable_lambda.worker import Invocation  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    invocation = Invocation(
        request_id=f"bench-{time.monotonic_ns()}",
        remaining=lambda: deadline - time.monotonic(),
        timeout=timeout,
    )
    return worker.handle(decode_message(body), invocation)
