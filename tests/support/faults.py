"""Botocore-level fault injection: ambiguous writes, throttling and 5xx on chosen calls.

A :class:`FaultInjector` sits in a boto3 client's ``before-send`` event, in
place of moto's in-process stubber (which it calls itself), so it decides per
HTTP attempt whether the request reaches the backend and what the caller sees::

    faults = FaultInjector().attach(store.client)
    faults.inject("TransactWriteItems", Fault.APPLIED_THEN_TIMEOUT, calls={1})
    store.record_entry(...)  # applied by moto, then botocore sees a ReadTimeout and retries

Calls are counted per operation from 1 (``before-call``, so botocore's own
retries of a call do not count as new calls); ``attempts`` says how many
consecutive HTTP attempts of a chosen call get the fault (default 1: the
first attempt fails, botocore's retry goes through). With a moto server
rather than in-process moto, an applied fault sends the request itself.
"""

from __future__ import annotations

import enum
import json
import threading
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError


class Fault(enum.Enum):
    """What the caller of a faulted attempt sees, and whether the backend applied it."""

    #: The request reaches the backend and is applied; the caller sees a ReadTimeout.
    APPLIED_THEN_TIMEOUT = "applied-then-timeout"
    #: The request is applied; the caller sees HTTP 500 (InternalServerError).
    APPLIED_THEN_5XX = "applied-then-5xx"
    #: Not applied: ProvisionedThroughputExceededException (DynamoDB) or ThrottlingException.
    THROTTLE = "throttle"
    #: Not applied: HTTP 500 InternalServerError.
    SERVER_ERROR = "5xx"

    @property
    def applied(self) -> bool:
        """Whether the backend applies the request before the caller sees the fault."""
        return self in {Fault.APPLIED_THEN_TIMEOUT, Fault.APPLIED_THEN_5XX}


@dataclass(frozen=True)
class Rule:
    """Fault ``fault`` on the first ``attempts`` HTTP attempts of ``calls`` of ``operation``."""

    operation: str
    fault: Fault
    calls: frozenset[int]
    attempts: int = 1


@dataclass(frozen=True)
class Injected:
    """One fault that happened: which call, which attempt, what."""

    operation: str
    call: int
    attempt: int
    fault: Fault


class _Raw(BytesIO):
    """The raw body botocore reads a response from."""

    def stream(self, **_: Any) -> Any:
        yield self.read()


class FaultInjector:
    """Injects :class:`Fault` s into chosen calls of boto3 clients (see the module docs)."""

    def __init__(self) -> None:
        """No rules, attached to nothing."""
        self.rules: list[Rule] = []
        self.injected: list[Injected] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._current = threading.local()
        self._detachers: list[Any] = []

    def inject(
        self, operation: str, fault: Fault, *, calls: set[int] | None = None, attempts: int = 1
    ) -> FaultInjector:
        """Fault the next call of ``operation`` (or the numbered ``calls``, counted from 1)."""
        with self._lock:
            chosen = calls if calls is not None else {self.calls[operation] + 1}
            self.rules.append(Rule(operation, fault, frozenset(chosen), attempts))
        return self

    def clear(self) -> None:
        """Drop every rule (counts and the log of injected faults stay)."""
        with self._lock:
            self.rules.clear()

    def count(self, operation: str, fault: Fault | None = None) -> int:
        """Faults injected into ``operation`` (of kind ``fault``)."""
        with self._lock:
            return sum(
                1
                for i in self.injected
                if i.operation == operation and (fault is None or i.fault is fault)
            )

    def attach(self, *clients: Any) -> FaultInjector:
        """Take over the ``before-send`` of ``clients`` (boto3 low-level clients)."""
        for client in clients:
            self._attach(client)
        return self

    def detach(self) -> None:
        """Give the clients back their own ``before-send``."""
        for detach in self._detachers:
            detach()
        self._detachers.clear()

    def _attach(self, client: Any) -> None:
        events = client.meta.events
        stubber = _moto_stubber()
        if stubber is not None:
            # Moto's stubber answers every request in before-send, and every handler
            # of the event runs: it must be ours to call or skip.
            events.unregister("before-send", stubber)
        uid = f"dl-faults-{id(self)}"

        def on_call(event_name: str = "", **_: Any) -> None:
            operation = event_name.rsplit(".", maxsplit=1)[-1]
            with self._lock:
                self.calls[operation] += 1
                number = self.calls[operation]
            self._current.call = (operation, number)
            self._current.attempt = 0

        def on_send(request: Any, event_name: str = "", **_: Any) -> Any:
            return self._on_send(client, request, event_name)

        events.register("before-call", on_call, unique_id=f"{uid}-call")
        events.register("before-send", on_send, unique_id=f"{uid}-send")

        def detach() -> None:
            events.unregister("before-call", unique_id=f"{uid}-call")
            events.unregister("before-send", unique_id=f"{uid}-send")
            if stubber is not None:
                events.register("before-send", stubber)

        self._detachers.append(detach)

    def _on_send(self, client: Any, request: Any, event_name: str) -> Any:
        operation, number = getattr(
            self._current, "call", (event_name.rsplit(".", maxsplit=1)[-1], 0)
        )
        self._current.attempt = attempt = getattr(self._current, "attempt", 0) + 1
        fault = self._fault(operation, number, attempt)
        if fault is None:
            return _deliver(client, request, event_name, send=False)
        with self._lock:
            self.injected.append(Injected(operation, number, attempt, fault))
        if fault.applied:
            _deliver(client, request, event_name, send=True)
            if fault is Fault.APPLIED_THEN_TIMEOUT:
                raise ReadTimeoutError(endpoint_url=request.url)
            return _error(client, request, 500, "InternalServerError")
        if fault is Fault.THROTTLE:
            code = (
                "ProvisionedThroughputExceededException"
                if client.meta.service_model.service_name == "dynamodb"
                else "ThrottlingException"
            )
            return _error(client, request, 400, code)
        return _error(client, request, 500, "InternalServerError")

    def _fault(self, operation: str, number: int, attempt: int) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if (
                    rule.operation == operation
                    and number in rule.calls
                    and attempt <= rule.attempts
                ):
                    return rule.fault
        return None


def _moto_stubber() -> Any:
    try:
        from moto.core.models import botocore_stubber  # noqa: PLC0415
    except ImportError:  # pragma: no cover - moto is a test dependency
        return None
    return botocore_stubber


def _deliver(client: Any, request: Any, event_name: str, *, send: bool) -> Any:
    """Hand ``request`` to in-process moto, or (``send``) over HTTP to a moto server."""
    stubber = _moto_stubber()
    if stubber is not None and stubber.enabled:
        return stubber(event_name=event_name, request=request)
    if not send:
        return None  # botocore sends it itself
    return client._endpoint.http_session.send(request)


def _error(client: Any, request: Any, status: int, code: str) -> AWSResponse:
    """An error response in the client's protocol, as the service would send it."""
    protocol = client.meta.service_model.protocol
    message = f"injected {code}"
    if protocol in {"json", "rest-json"}:
        body = json.dumps({"__type": f"com.amazonaws.fault#{code}", "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    else:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    return AWSResponse(request.url, status, headers, _Raw(body))


def no_backoff(monkeypatch: Any) -> None:
    """Make botocore retry at once (its jittered backoff is wall-clock time tests do not need)."""
    from botocore.retries import standard  # noqa: PLC0415

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0)
