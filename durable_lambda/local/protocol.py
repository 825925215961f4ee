"""The line protocol between the emulator and one execution environment (a subprocess).

Every message is one JSON object on one line.

1. child -> parent, once, after importing the handler (the init phase):
   ``{"ready": true, "init_ms": 412.5}`` or
   ``{"ready": false, "error": "...", "error_type": "...", "traceback": "..."}``.
2. parent -> child, per invocation:
   ``{"request_id": "...", "event": {...}, "deadline_ms": 1767225600000}``
   where ``deadline_ms`` is Unix time in milliseconds, as in the Lambda
   runtime API's ``Lambda-Runtime-Deadline-Ms`` header.
3. child -> parent, per invocation:
   ``{"request_id": "...", "ok": true, "result": ...}`` or
   ``{"request_id": "...", "ok": false, "error": "...", "error_type": "...", "traceback": "..."}``.

The child writes these on a private duplicate of its original stdout; the
handler's own prints go to stderr, so they cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

#: ``error_type`` when the handler module or attribute cannot be imported.
IMPORT_ERROR = "Runtime.ImportModuleError"
#: ``error_type`` when the module imports but has no such callable.
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
#: ``error_type`` when the handler's return value is not JSON.
SERIALIZATION_ERROR = "Runtime.SerializationError"


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line (JSON has no raw newlines, so one object is one line)."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one protocol line.

    Raises:
        ValueError: Not JSON.
        TypeError: JSON, but not an object.
    """
    message = json.loads(line)
    if not isinstance(message, dict):
        raise TypeError(f"protocol message must be a JSON object, got {type(message).__name__}")
    return message


def error_fields(exc: BaseException, error_type: str | None = None) -> dict[str, str]:
    """The ``error``/``error_type``/``traceback`` fields describing ``exc``."""
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "error_type": error_type or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }
