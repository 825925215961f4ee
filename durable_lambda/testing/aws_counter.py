"""Count the AWS requests boto3 clients make, by service and operation.

Used by the contract tests and the benchmarks to hold the adapters to their
request budget. It hooks botocore's event system and needs no moto::

    counter = RequestCounter().attach(store.client)
    store.take_lease(...)
    assert counter.count("dynamodb") == 1
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

#: DynamoDB operations that write (billed as write requests).
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
)
#: DynamoDB operations that read.
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


class RequestCounter:
    """Counts API calls (``before-call``) and HTTP attempts (``before-send``, retries included).

    Attributes:
        calls: Calls by ``"service.Operation"`` (e.g. ``"dynamodb.Query"``).
        sends: HTTP attempts by the same key; above ``calls`` when botocore retried.
    """

    def __init__(self) -> None:
        """Start at zero, attached to nothing."""
        self.calls: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clients: list[Any] = []

    def attach(self, *clients: Any) -> RequestCounter:
        """Count the requests of ``clients`` (boto3 low-level clients) from now on."""
        for client in clients:
            events = client.meta.events
            events.register("before-call", self._on_call, unique_id=f"dl-count-call-{id(self)}")
            events.register("before-send", self._on_send, unique_id=f"dl-count-send-{id(self)}")
            self._clients.append(client)
        return self

    def detach(self) -> None:
        """Stop counting."""
        for client in self._clients:
            client.meta.events.unregister("before-call", unique_id=f"dl-count-call-{id(self)}")
            client.meta.events.unregister("before-send", unique_id=f"dl-count-send-{id(self)}")
        self._clients.clear()

    def _on_call(self, event_name: str = "", **_: Any) -> None:
        with self._lock:
            self.calls[_key(event_name)] += 1

    def _on_send(self, event_name: str = "", **_: Any) -> None:
        with self._lock:
            self.sends[_key(event_name)] += 1

    def reset(self) -> None:
        """Back to zero."""
        with self._lock:
            self.calls.clear()
            self.sends.clear()

    def count(self, service: str | None = None, operations: Iterable[str] | None = None) -> int:
        """Calls made, optionally only to ``service`` and only of ``operations``."""
        wanted = set(operations) if operations is not None else None
        with self._lock:
            return sum(
                number
                for key, number in self.calls.items()
                if (service is None or key.split(".", 1)[0] == service)
                and (wanted is None or key.split(".", 1)[1] in wanted)
            )

    def dynamodb_writes(self) -> int:
        """DynamoDB write calls."""
        return self.count("dynamodb", DYNAMODB_WRITES)

    def dynamodb_reads(self) -> int:
        """DynamoDB read calls."""
        return self.count("dynamodb", DYNAMODB_READS)

    def snapshot(self) -> dict[str, int]:
        """The counts so far, by ``"service.Operation"``."""
        with self._lock:
            return dict(self.calls)


def _key(event_name: str) -> str:
    # "before-call.dynamodb.TransactWriteItems" -> "dynamodb.TransactWriteItems"
    parts = event_name.split(".")
    return ".".join(parts[1:3]) if len(parts) >= 3 else event_name  # noqa: PLR2004
