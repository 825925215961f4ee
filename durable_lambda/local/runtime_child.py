"""One Lambda execution environment: ``python -m durable_lambda.local.runtime_child <handler>``.

Imports the handler once (the cold start), reports ready, then serves
invocations one at a time until stdin closes. See :mod:`durable_lambda.local.protocol`.
The function's name, memory and log stream come from the ``AWS_LAMBDA_*``
variables, as in the Lambda Python runtime.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from durable_lambda.local.lambda_context import LambdaContext
from durable_lambda.local.protocol import (
    HANDLER_NOT_FOUND,
    IMPORT_ERROR,
    SERIALIZATION_ERROR,
    decode,
    encode,
    error_fields,
)

Handler = Callable[[Any, Any], Any]


class HandlerNotFoundError(ImportError):
    """The module imported but has no callable of the handler's name."""


def load_handler(path: str) -> Handler:
    """The callable named by ``package.module.attribute``.

    Raises:
        HandlerNotFoundError: ``path`` names no callable.
        Exception: Whatever importing the module raises.
    """
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise HandlerNotFoundError(f"handler {path!r} must be 'module.function'")
    module = importlib.import_module(module_name)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise HandlerNotFoundError(
            f"handler {attribute!r} missing or not callable in module {module_name!r}"
        )
    return handler  # type: ignore[no-any-return]


def _take_protocol_pipes() -> tuple[BinaryIO, BinaryIO]:
    """Keep stdin/stdout for the protocol; give user code stderr and ``/dev/null`` instead.

    Done at the file-descriptor level so that prints from C extensions or
    subprocesses cannot reach the protocol pipe either.
    """
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    return protocol_in, protocol_out


def _context(request: dict[str, Any]) -> LambdaContext:
    # The deadline arrives as wall-clock milliseconds; hold it on the monotonic
    # clock from here on so a clock step cannot stretch or shrink the invocation.
    deadline = time.monotonic() + float(request["deadline_ms"]) / 1000.0 - time.time()
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local-function")
    return LambdaContext.create(
        function_name=name,
        deadline=deadline,
        request_id=str(request["request_id"]),
        memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
        log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )


def invoke(handler: Handler, request: dict[str, Any]) -> bytes:
    """Run one invocation; the protocol line answering ``request``."""
    request_id = str(request["request_id"])
    context = _context(request)
    sys.stderr.write(f"START RequestId: {request_id} Version: $LATEST\n")
    started = time.monotonic()
    try:
        result = handler(request.get("event"), context)
    except Exception as exc:  # noqa: BLE001 - every handler error goes back to the caller
        sys.stderr.write(f"[ERROR] {type(exc).__name__}: {exc} RequestId: {request_id}\n")
        line = encode({"request_id": request_id, "ok": False, **error_fields(exc)})
    else:
        try:
            line = encode({"request_id": request_id, "ok": True, "result": result})
        except (TypeError, ValueError) as exc:
            line = encode(
                {"request_id": request_id, "ok": False, **error_fields(exc, SERIALIZATION_ERROR)}
            )
    duration_ms = (time.monotonic() - started) * 1000
    sys.stderr.write(f"END RequestId: {request_id}\n")
    sys.stderr.write(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\n")
    sys.stderr.flush()
    return line


def main(argv: list[str] | None = None) -> int:
    """Serve invocations of the handler named in ``argv`` until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m durable_lambda.local.runtime_child <module.handler>\n")
        return 2
    protocol_in, protocol_out = _take_protocol_pipes()
    started = time.monotonic()
    try:
        handler = load_handler(args[0])
    except Exception as exc:  # noqa: BLE001 - reported to the parent, like Lambda's init error
        kind = HANDLER_NOT_FOUND if isinstance(exc, HandlerNotFoundError) else IMPORT_ERROR
        protocol_out.write(encode({"ready": False, **error_fields(exc, kind)}))
        protocol_out.flush()
        return 1
    init_ms = (time.monotonic() - started) * 1000
    protocol_out.write(encode({"ready": True, "init_ms": init_ms, "pid": os.getpid()}))
    protocol_out.flush()
    for line in protocol_in:
        protocol_out.write(invoke(handler, decode(line)))
        protocol_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
