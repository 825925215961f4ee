"""Ship the emulated functions' log files to CloudWatch Logs, as Lambda does.

On AWS each function's output lands in the log group ``/aws/lambda/<function>``;
the emulator writes it to files (``worker.log``...). :class:`LogShipper` copies
each file's new complete lines into that function's group on the stack's Logs
endpoint (the embedded moto server, or LocalStack), so ``durable-lambda runs
logs`` reads the dev stack the way it reads a deployed one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: The stream every shipped line goes to (Lambda names one per environment; one is enough here).
STREAM = "emulated"
#: Lines per put_log_events call (CloudWatch takes at most 10,000 events and 1 MB).
_BATCH = 1000
#: CloudWatch's cap on one event's message, bytes (longer lines are cut, as Lambda cuts them).
_MAX_EVENT = 256 * 1024 - 26


def log_group(function: str) -> str:
    """The log group Lambda gives ``function``."""
    return f"/aws/lambda/{function}"


class LogShipper:
    """Copies new lines of log files into CloudWatch Logs groups.

    Args:
        logs: A boto3 ``logs`` client (the stack's Logs endpoint).
        files: Each log file and the function whose group receives its lines.
        clock_ms: The timestamp stamped on each line (milliseconds since the epoch).
    """

    def __init__(
        self,
        logs: Any,
        files: Mapping[Path, str],
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """Nothing is read or created until :meth:`ship`."""
        self._logs = logs
        self._files = dict(files)
        self._clock_ms = clock_ms
        self._offsets: dict[Path, int] = dict.fromkeys(self._files, 0)
        self._created: set[str] = set()

    def groups(self) -> list[str]:
        """The log groups lines are shipped to."""
        return [log_group(function) for function in self._files.values()]

    def ship(self) -> int:
        """Send every complete line written since the last call; how many were sent."""
        sent = 0
        for path, function in self._files.items():
            lines = self._new_lines(path)
            if lines:
                self._put(log_group(function), lines)
                sent += len(lines)
        return sent

    def _new_lines(self, path: Path) -> list[str]:
        try:
            with path.open("rb") as file:
                file.seek(self._offsets[path])
                data = file.read()
        except FileNotFoundError:
            return []
        # A line still being written has no newline yet: it ships on a later call.
        complete = data[: data.rfind(b"\n") + 1]
        self._offsets[path] += len(complete)
        text = complete.decode("utf-8", "replace")
        return [line[:_MAX_EVENT] for line in text.splitlines() if line.strip()]

    def _put(self, group: str, lines: list[str]) -> None:
        if group not in self._created:
            self._ensure(group)
        now = self._clock_ms()
        for start in range(0, len(lines), _BATCH):
            events = [{"timestamp": now, "message": m} for m in lines[start : start + _BATCH]]
            self._logs.put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=events)

    def _ensure(self, group: str) -> None:
        # A restarted dev stack (or a LocalStack kept running) already has them.
        existing = self._logs.exceptions.ResourceAlreadyExistsException
        with contextlib.suppress(existing):
            self._logs.create_log_group(logGroupName=group)
        with contextlib.suppress(existing):
            self._logs.create_log_stream(logGroupName=group, logStreamName=STREAM)
        self._created.add(group)
