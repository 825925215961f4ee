"""ApiClient: the HTTP API of a deployed stack, SigV4-signed, for machines off the table.

The same operations and models as the direct client (``Client``,
:mod:`durable_lambda.runs`, :mod:`durable_lambda.views`), over API Gateway with
IAM authorisation: every request is signed with botocore's ``SigV4Auth`` for
the service ``execute-api``::

    from durable_lambda import ApiClient

    api = ApiClient("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    handle = api.trigger("process-order", {"order_id": "o-1"})
    detail = api.wait(handle.run_id, timeout=60)
    again = api.replay(handle.run_id, from_step="charge")

A refused request raises the exception the direct client raises for the same
problem (``RunNotFoundError``, ``UnknownTaskError``, ``PayloadValidationError``,
``PayloadTooLarge``, ``UnknownStepError``, ``TokenNotFoundError``...); what has
no counterpart raises :class:`ApiRequestError` with the status and error body.
Requests go through the standard library (no HTTP dependency to add); botocore
is imported when a client is built.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from durable_lambda import serde
from durable_lambda.catalog import TaskDescription
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import TokenInfo, TokenStatus
from durable_lambda.errors import (
    ConfigurationError,
    DurableLambdaError,
    PayloadTooLarge,
    PayloadValidationError,
    RunFinishedError,
    RunNotFoundError,
    RunWaitTimeoutError,
    TokenAlreadyResolvedError,
    TokenNotFoundError,
    UnknownStepError,
    UnknownTaskError,
)
from durable_lambda.task import RunHandle
from durable_lambda.views import RunDetail, RunPage

if TYPE_CHECKING:
    from botocore.credentials import Credentials

    from durable_lambda.api.models import BatchItemResult, QueueView

__all__ = ["ApiClient", "ApiRequestError"]

SERVICE = "execute-api"
#: ``<api id>.execute-api.<region>.amazonaws.com``: the region a URL names.
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_REQUEST_FIELDS = ("body.", "query.", "path.", "body")


class ApiRequestError(DurableLambdaError):
    """A request the API refused with an error the direct client has no class for.

    Attributes:
        status: The HTTP status.
        type: The error body's ``type`` (``bad_cursor``, ``idempotency_conflict``...).
        message: Its ``message``.
        details: Its ``details``.
    """

    def __init__(self, status: int, type_: str, message: str, details: Any = None) -> None:
        self.status = status
        self.type = type_
        self.message = message
        self.details = details
        super().__init__(f"HTTP {status} {type_}: {message}")


def _region_of(base_url: str) -> str | None:
    host = urllib.parse.urlsplit(base_url).hostname or ""
    found = _REGION_IN_HOST.search(host)
    return found.group(1) if found else None


def _session_region(session: Any) -> str | None:
    """The default region of a boto3 or a botocore session."""
    region = getattr(session, "region_name", None)
    if region is None and hasattr(session, "get_config_variable"):
        region = session.get_config_variable("region")
    return str(region) if region else None


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


class ApiClient:
    """Talks to a deployed durable-lambda HTTP API, signing each request with SigV4.

    Args:
        base_url: The API's URL with its stage (``https://<id>.execute-api.<region>.amazonaws.com/prod``).
        session: A boto3 (or botocore) session whose credentials sign requests
            (default: a new boto3 session: the environment, profile or role).
        region: The API's region (default: the one an ``execute-api`` URL names,
            else the session's).
        timeout: Seconds each request may take.
        sleep: How :meth:`wait` pauses between reads (a test passes a fake).
        monotonic: The clock :meth:`wait`'s timeout is measured on.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: Any = None,
        region: str | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Resolve the region and credentials once; nothing is sent yet."""
        if session is None:
            import boto3  # noqa: PLC0415 - only a client that signs needs boto3

            session = boto3.session.Session()
        self.base_url = base_url.rstrip("/")
        # The URL's region is the API's: a session's default region may be another.
        found = region or _region_of(self.base_url) or _session_region(session)
        if not found:
            raise ConfigurationError(
                f"no region for {self.base_url!r}: pass region= or configure the session's"
            )
        self.region: str = found
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError("no AWS credentials to sign API requests with")
        self._credentials: Credentials = credentials
        self.timeout = timeout
        self._sleep = sleep
        self._monotonic = monotonic

    # -- transport ---------------------------------------------------------------------

    def _signed(self, method: str, url: str, body: bytes | None) -> urllib.request.Request:
        from botocore.auth import SigV4Auth  # noqa: PLC0415 - botocore when a request is made
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        # Frozen: a refreshing role's key, secret and token are read as one set.
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(
            request
        )
        prepared = request.prepare()
        return urllib.request.Request(  # noqa: S310 - the URL is the caller's API, http(s) only
            prepared.url, data=body, headers=dict(prepared.headers.items()), method=method
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str | None] | None = None,
        context: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one signed request; the decoded JSON answer, or the mapped error raised."""
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"base_url must be http(s), got {self.base_url!r}")
        data = serde.encode(dict(body)).encode() if body is not None else None
        request = self._signed(method, url, data)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            raise _mapped(exc.code, raw, context or {}) from None

    # -- tasks and triggers --------------------------------------------------------------

    def tasks(self) -> list[TaskDescription]:
        """``GET /tasks``: the task catalog."""
        got = self._call("GET", "/tasks")
        return [TaskDescription.model_validate(t) for t in got["tasks"]]

    def trigger(self, task: str, payload: Any, **options: Any) -> RunHandle:
        """``POST /tasks/{task}/runs``: start a run (options as :meth:`Client.trigger`'s).

        ``idempotency_key_ttl``, ``delay`` and ``ttl`` take seconds or a ``timedelta``.
        A repeated idempotency key returns the earlier run (``cached``).
        """
        body = {"payload": payload, **_options(options)}
        got = self._call(
            "POST", f"/tasks/{_quote(task)}/runs", body=body, context={"task_id": task}
        )
        return RunHandle(got["run_id"], got["task_id"], cached=bool(got.get("existing")))

    def trigger_batch(self, task: str, items: Sequence[Mapping[str, Any]]) -> list[BatchItemResult]:
        """``POST /tasks/{task}/batch``: one result per item (``run_id`` or ``error``), in order.

        Each item is ``{"payload": ..., **trigger options}``, as for :meth:`Client.trigger_batch`.
        """
        from durable_lambda.api.models import BatchItemResult  # noqa: PLC0415 - see _queue_view

        body = {"items": [{"payload": i.get("payload"), **_options(i)} for i in items]}
        got = self._call(
            "POST", f"/tasks/{_quote(task)}/batch", body=body, context={"task_id": task}
        )
        return [BatchItemResult.model_validate(r) for r in got["results"]]

    # -- runs ----------------------------------------------------------------------------

    def retrieve(self, run_id: str, *, include_values: bool = False) -> RunDetail:
        """``GET /runs/{run_id}``: the run with its timeline (as :func:`runs.retrieve`)."""
        query = {"include": "values" if include_values else None}
        got = self._call("GET", f"/runs/{_quote(run_id)}", query=query)
        return RunDetail.model_validate(got)

    def list_runs(
        self,
        *,
        task: str | None = None,
        status: RunStatus | str | None = None,
        tag: str | None = None,
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """``GET /runs``: one page newest first; pass its ``next_cursor`` for the next."""
        query = {
            "task": task,
            "status": RunStatus(status).value if status is not None else None,
            "tag": tag,
            "created_from": created_from.isoformat() if created_from else None,
            "created_to": created_to.isoformat() if created_to else None,
            "limit": str(limit),
            "cursor": cursor,
        }
        return RunPage.model_validate(self._call("GET", "/runs", query=query))

    def wait(self, run_id: str, *, timeout: float, poll_interval: float = 1.0) -> RunDetail:
        """Read the run until it has ended (as :func:`runs.wait`).

        Raises:
            RunNotFoundError: No such run.
            RunWaitTimeoutError: Still not ended after ``timeout`` seconds.
        """
        deadline = self._monotonic() + timeout
        while True:
            detail = self.retrieve(run_id)
            if detail.status.is_terminal:
                return detail
            left = deadline - self._monotonic()
            if left <= 0:
                raise RunWaitTimeoutError(run_id, detail.status.value, timeout)
            self._sleep(min(poll_interval, left))

    def replay(self, run_id: str, payload: Any = None, from_step: str | None = None) -> RunHandle:
        """``POST /runs/{run_id}/replay``: a new run linked to it (as :func:`runs.replay`)."""
        body: dict[str, Any] = {"payload": payload}
        if from_step is not None:
            body["from_step"] = from_step
        context = {"run_id": run_id, "step": from_step or ""}
        got = self._call("POST", f"/runs/{_quote(run_id)}/replay", body=body, context=context)
        return RunHandle(got["run_id"], got["task_id"])

    def cancel(self, run_id: str) -> RunDetail:
        """``POST /runs/{run_id}/cancel``: the run as the cancel leaves it (as ``runs.cancel``).

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It had already finished; nothing changed.
        """
        got = self._call(
            "POST", f"/runs/{_quote(run_id)}/cancel", body={}, context={"run_id": run_id}
        )
        return RunDetail.model_validate(got)

    # -- tokens --------------------------------------------------------------------------

    def complete_token(self, token_id: str, data: Any = None) -> TokenInfo:
        """``POST /tokens/{token_id}/complete``: the waiting run wakes."""
        return self._token("POST", token_id, "/complete", {"data": data})

    def fail_token(self, token_id: str, error_type: str, message: str = "") -> TokenInfo:
        """``POST /tokens/{token_id}/fail``: the waiting run sees ``TokenFailedError``."""
        return self._token(
            "POST", token_id, "/fail", {"error": {"type": error_type, "message": message}}
        )

    def heartbeat_token(self, token_id: str) -> TokenInfo:
        """``POST /tokens/{token_id}/heartbeat``."""
        return self._token("POST", token_id, "/heartbeat", {})

    def retrieve_token(self, token_id: str) -> TokenInfo:
        """``GET /tokens/{token_id}``, with its completion data inline."""
        return self._token("GET", token_id, "", None, query={"include": "values"})

    def _token(
        self,
        method: str,
        token_id: str,
        action: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None = None,
    ) -> TokenInfo:
        path = f"/tokens/{_quote(token_id)}{action}"
        got = self._call(method, path, body=body, query=query, context={"token_id": token_id})
        return _token_info(got)

    # -- queues --------------------------------------------------------------------------

    def queues(self) -> list[QueueView]:
        """``GET /queues``: every queue a task declares, with its counter."""
        return [_queue_view(q) for q in self._call("GET", "/queues")["queues"]]

    def pause_queue(self, name: str, concurrency_key: str | None = None) -> QueueView:
        """``POST /queues/{name}/pause``."""
        return self._queue(name, "pause", {"concurrency_key": concurrency_key})

    def resume_queue(self, name: str, concurrency_key: str | None = None) -> QueueView:
        """``POST /queues/{name}/resume``."""
        return self._queue(name, "resume", {"concurrency_key": concurrency_key})

    def set_queue_limit(
        self, name: str, limit: int | None, concurrency_key: str | None = None
    ) -> QueueView:
        """``POST /queues/{name}/limit`` (``None``: back to the code's limit)."""
        return self._queue(name, "limit", {"limit": limit, "concurrency_key": concurrency_key})

    def _queue(self, name: str, action: str, body: Mapping[str, Any]) -> QueueView:
        got = self._call("POST", f"/queues/{_quote(name)}/{action}", body=body)
        return _queue_view(got)


def _queue_view(data: Any) -> QueueView:
    # Lazily: durable_lambda.api loads the Powertools resolver, which a client never needs.
    from durable_lambda.api.models import QueueView  # noqa: PLC0415

    return QueueView.model_validate(data)


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Trigger options as the API takes them: durations in seconds, tags a list."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name == "payload" or value is None:
            continue
        if isinstance(value, dt.timedelta):
            value = value.total_seconds()  # noqa: PLW2901 - the wire form of the same option
        elif name == "tags":
            value = list(value)  # noqa: PLW2901
        out[name] = value
    return out


def _token_info(data: Mapping[str, Any]) -> TokenInfo:
    """A token view as :class:`TokenInfo` (its fields by name; ``data`` kept as JSON text)."""

    def when(name: str) -> dt.datetime | None:
        value = data.get(name)
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None

    error = data.get("error")
    view = data.get("data")  # a value view: inline, or by size and hash
    value = serde.encode(view["value"]) if isinstance(view, dict) and view.get("inline") else None
    return TokenInfo(
        token_id=data["token_id"],
        run_id=data["run_id"],
        status=TokenStatus(data["status"]),
        created_at=when("created_at") or dt.datetime.now(dt.UTC),
        name=data.get("name"),
        timeout_at=when("timeout_at"),
        heartbeat_timeout=data.get("heartbeat_timeout"),
        last_heartbeat_at=None,  # the API shows the heartbeat deadline, not the last beat
        resolved_at=when("resolved_at"),
        data=value,
        error=ErrorInfo(error["type"], error.get("message", "")) if error else None,
        timeout_reason=data.get("timeout_reason"),
        tags=tuple(data.get("tags") or ()),
    )


def _mapped(status: int, raw: bytes, context: Mapping[str, str]) -> DurableLambdaError:
    """The direct client's exception for an error answer, else :class:`ApiRequestError`."""
    try:
        error = json.loads(raw)["error"]
        kind, message, details = str(error["type"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace")[:200]
        return ApiRequestError(status, "http_error", text or f"HTTP {status}")
    known = _known(kind, message, details, context)
    return known if known is not None else ApiRequestError(status, kind, message, details)


def _known(
    kind: str, message: str, details: Any, context: Mapping[str, str]
) -> DurableLambdaError | None:
    """The direct client's exception for the error ``kind``, if it has one."""
    found: DurableLambdaError | None = None
    if kind == "run_not_found":
        found = RunNotFoundError(message)
    elif kind == "run_finished":
        status = details.get("status", "") if isinstance(details, dict) else ""
        found = RunFinishedError(context.get("run_id", ""), str(status))
    elif kind == "unknown_task":
        found = UnknownTaskError(message)
    elif kind == "token_not_found":
        found = TokenNotFoundError(context.get("token_id", ""))
    elif kind in {"token_already_resolved", "token_resolved"}:
        state = details.get("status", "resolved") if isinstance(details, dict) else "resolved"
        found = TokenAlreadyResolvedError(context.get("token_id", ""), str(state))
    elif kind == "payload_too_large" and isinstance(details, dict):
        found = PayloadTooLarge(str(details["what"]), int(details["size"]), int(details["limit"]))
    elif kind == "unknown_step" and isinstance(details, dict):
        steps = [str(s) for s in details.get("steps", [])]
        found = UnknownStepError(context.get("run_id", ""), str(details.get("step", "")), steps)
    elif kind == "validation_error":
        fields = details if isinstance(details, list) else []
        named = [(str(f.get("field", "")), str(f.get("message", ""))) for f in fields]
        if named and not all(f.startswith(_REQUEST_FIELDS) for f, _ in named):
            found = PayloadValidationError(context.get("task_id", ""), "payload", named)
        else:
            found = ConfigurationError(message)
    return found
