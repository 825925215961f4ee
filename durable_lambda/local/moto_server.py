"""A moto server on localhost: the AWS backend of the emulated stack.

One ``ThreadedMotoServer`` in this process serves DynamoDB, S3 and SQS over
HTTP, so the worker subprocesses reach the same state as the parent.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from types import TracebackType
from typing import Any, Self

from durable_lambda.local.moto_transactions import spare_table_copies

#: Credentials moto accepts; never real ones.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DEFAULT_REGION = "us-east-1"
#: The account id moto uses in ARNs.
MOTO_ACCOUNT_ID = "123456789012"


_DYNAMODB_LOCK = threading.Lock()


def serialise_dynamodb() -> None:
    """Make moto's DynamoDB requests atomic, as DynamoDB's are (idempotent, process-wide).

    moto evaluates a condition and applies the write without a lock, so two
    concurrent conditional writes of one item can both succeed (measured by
    our reliability tests: about 1 in 200 races of two ``UpdateItem`` on one
    key). Leases and concurrency counters rely on DynamoDB never doing that,
    so the local stack serialises every DynamoDB request through one lock.
    """
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415 - moto only locally

    if getattr(DynamoHandler.call_action, "_dl_serialised", False):
        return
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    call_action._dl_serialised = True  # type: ignore[attr-defined]  # noqa: SLF001 - our own marker
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


class MotoServer:
    """A moto server on ``127.0.0.1`` and the environment that points boto3 at it.

    Args:
        port: The port to listen on; 0 (default) lets the OS pick a free one,
            which cannot race with another process the way probing for one can.
        region: The region handed out in :meth:`env`.
        quiet: Silence werkzeug's line per request.
    """

    def __init__(self, port: int = 0, *, region: str = DEFAULT_REGION, quiet: bool = True) -> None:
        self._port = port
        self.region = region
        self._quiet = quiet
        self._server: Any = None  # moto ships no types
        self._endpoint: str | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._endpoint is None:
            raise RuntimeError("the moto server is not running; call start() first")
        return self._endpoint

    def start(self) -> str:
        """Start the server (idempotent) and return its endpoint URL."""
        if self._endpoint is not None:
            return self._endpoint
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto only for the local stack

        if self._quiet:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
        serialise_dynamodb()
        spare_table_copies()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint = f"http://{host}:{port}"
        return self._endpoint

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        server, self._server, self._endpoint = self._server, None, None
        if server is not None:
            server.stop()

    def reset(self) -> None:
        """Forget every resource and item (``POST /moto-api/reset``)."""
        request = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 endpoint
            f"{self.endpoint_url}/moto-api/reset", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def env(self) -> dict[str, str]:
        """Environment variables that send every boto3 client of a process here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
