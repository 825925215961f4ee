"""Shared benchmark helpers: the one-JSON-object-per-line output format."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable


def emit(figure: str, value: float, unit: str, **extra: object) -> None:
    """Print one figure as ``{"figure", "value", "unit"}`` JSON on its own line."""
    record: dict[str, object] = {"figure": figure, "value": round(value, 3), "unit": unit}
    record.update(extra)
    print(json.dumps(record), flush=True)


def progress(message: str) -> None:
    """Progress for humans, on stderr so stdout stays machine-readable."""
    print(f"# {message}", file=sys.stderr, flush=True)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of ``runs`` calls of ``measure``."""
    return statistics.median(measure() for _ in range(runs))
