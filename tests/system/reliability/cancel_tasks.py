"""Tasks of the cancel test on the emulated stack (the workers import this module).

The first step blocks on a gate file the test controls, so the test can cancel
the run while an invocation deterministically holds it mid-step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ledger import append

from durable_lambda import step, task

#: The most a gated step waits for its gate (the stack's timeout is above it).
GATE_SECONDS = 120.0


@step
def gated(gate: str) -> str:
    append("start")
    Path(f"{gate}.entered").write_text("")  # tells the test the body is running
    deadline = time.monotonic() + GATE_SECONDS
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.02)
    append("end")
    return "through"


@step
def after_gate() -> str:
    append("start")
    append("end")
    return "after"


@task(id="cancel-gated")
async def cancel_gated(payload: dict[str, Any]) -> str:
    await gated(payload["gate"])
    return await after_gate()
