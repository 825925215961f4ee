"""The step ledger: step bodies running in worker processes append one JSON line per event.

Imported by the task modules the emulated workers load (so it must stay free of
test-only dependencies) and by the tests that read the ledger back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from durable_lambda.engine.execution import current_step

LEDGER_ENV = "DL_TEST_LEDGER"


def append(event: str, **extra: Any) -> None:
    """Append one ledger line for the step whose body is running.

    One ``os.write`` of a whole line on an ``O_APPEND`` descriptor: a SIGKILL
    leaves complete lines, and concurrent workers never interleave them.
    """
    info = current_step()
    if info is None:
        raise RuntimeError("ledger lines are written from step bodies only")
    line = {
        "run": info.run_id,
        "step": info.key,
        "event": event,
        "t": time.time(),
        "pid": os.getpid(),
        **extra,
    }
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every ledger line, in file order (an absent file is an empty ledger)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
