"""Tiny Lambda handlers that exercise the emulator itself (not durable tasks).

They run inside emulated execution environments (subprocesses); results
come back through the protocol or, for SQS-driven ones, through files in
the directory named by the ``EMU_TEST_DIR`` environment variable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

IMPORTED_AT = time.time()


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "imported_at": IMPORTED_AT,
    }


def sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event["seconds"]))
    return {"pid": os.getpid()}


def gated(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Say it started (a file), then wait until the test creates the gate file."""
    folder = Path(os.environ["EMU_TEST_DIR"])
    (folder / "gated.started").write_text(str(os.getpid()))
    while not (folder / "gated.open").exists():
        time.sleep(0.01)
    return {"pid": os.getpid()}


def remaining(event: dict[str, Any], context: Any) -> list[int]:
    readings = []
    for _ in range(3):
        readings.append(context.get_remaining_time_in_millis())
        time.sleep(float(event.get("pause", 0.2)))
    return readings


def interval(event: dict[str, Any], context: Any) -> dict[str, float]:
    """Sleep, and report when it started and ended (for concurrency measurement)."""
    start = time.time()
    time.sleep(float(event["seconds"]))
    return {"start": start, "end": time.time(), "pid": os.getpid()}


def noisy(event: Any, context: Any) -> str:
    print('{"request_id": "forged", "ok": true, "result": "from print"}')  # noqa: T201
    print("no newline at the end", end="")  # noqa: T201
    os.write(1, b"raw bytes on fd 1\n")
    sys.__stdout__.write("via sys.__stdout__\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]
    return "clean"


def fails(event: Any, context: Any) -> None:
    raise ValueError("boom")


def exits(event: Any, context: Any) -> None:
    os._exit(3)


def sqs_recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record every delivered record; report as failed those whose body asks for it.

    A body ``{"fail_times": n}`` fails its first ``n`` deliveries (per
    ApproximateReceiveCount).
    """
    out = Path(os.environ["EMU_TEST_DIR"], "deliveries.jsonl")
    failures = []
    with out.open("a") as file:
        for record in event["Records"]:
            body = json.loads(record["body"])
            receives = int(record["attributes"]["ApproximateReceiveCount"])
            file.write(json.dumps({"at": time.time(), "record": record}) + "\n")
            if receives <= int(body.get("fail_times", 0)):
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
