"""ApiClient against the API handler served on localhost, every request's SigV4 signature checked.

The server side recomputes each request's signature with botocore from the
credentials it knows and refuses a mismatch with 403, as API Gateway's IAM
authoriser would; the handler behind it runs on moto.
"""

from __future__ import annotations

import io
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from api_support import Api, Context, deployed_tasks

from durable_lambda import ApiClient, ApiRequestError
from durable_lambda.api import ApiService, build_api
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.records import ResumeMessage
from durable_lambda.errors import (
    ConfigurationError,
    PayloadTooLarge,
    PayloadValidationError,
    RunNotFoundError,
    RunWaitTimeoutError,
    UnknownStepError,
    UnknownTaskError,
)
from durable_lambda.local.http_api import proxy_event
from durable_lambda.runs import Runs
from durable_lambda.services import build_services
from durable_lambda.task import TaskRegistry
from durable_lambda.views import RunPage
from durable_lambda.worker import Invocation

pytestmark = pytest.mark.moto

REGION = "us-east-1"
KEY_ID, SECRET = "AKIDAPICLIENTTEST", "api-client-test-secret"
ORDER = {"order_id": "o-1", "amount_cents": 4200, "email": "a@example.com"}
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass
class Served:
    url: str
    api: Api
    #: Per request: (method, path, Authorization header, signature verified).
    seen: list[tuple[str, str, str, bool]] = field(default_factory=list)


def signature_holds(environ: dict[str, Any], body: bytes) -> bool:
    """Whether the request's SigV4 signature is the one botocore computes with our secret."""
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    found = _AUTH.match(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None or (found["key"], found["service"]) != (KEY_ID, "execute-api"):
        return False
    received = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"}
    if environ.get("CONTENT_TYPE"):
        received["content-type"] = environ["CONTENT_TYPE"]
    signed = found["signed"].split(";")
    if "x-amz-date" not in signed or any(name not in received for name in signed):
        return False
    path = urllib.parse.quote(environ["PATH_INFO"])
    query = environ.get("QUERY_STRING", "")
    url = f"http://{received['host']}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=url,
        data=body,
        headers={name: received[name] for name in signed},
    )
    request.context["timestamp"] = received["x-amz-date"]
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "execute-api", found["region"])
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return bool(expected == found["signature"])


def _event(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The REST proxy event API Gateway would hand the function (the stage off its path)."""
    bare = {**environ, "PATH_INFO": environ["PATH_INFO"].removeprefix("/v1")}
    bare["wsgi.input"] = io.BytesIO(body)  # the signature check read the body already
    bare.setdefault("CONTENT_TYPE", "application/json")
    return proxy_event(bare, "api-client")


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def served(api: Api) -> Iterator[Served]:
    app = build_api(
        ApiService(build_services(api.ports, TaskRegistry(), api.settings).client, api.settings)
    )
    state = Served("", api)

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        holds = signature_holds(environ, body)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        state.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], auth, holds))
        if not holds:
            start_response("403 Forbidden", [("Content-Type", "application/json")])
            return [b'{"message": "The request signature we calculated does not match"}']
        response = app.resolve(_event(environ, body), Context())
        status = int(response["statusCode"])
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [(response.get("body") or "").encode()]

    server = make_server("127.0.0.1", 0, wsgi, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _client(served: Served, secret: str = SECRET, **kwargs: Any) -> ApiClient:
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=secret, region_name=REGION
    )
    return ApiClient(served.url, session=session, **kwargs)


def _ran(api: Api, run_id: str) -> None:
    """One invocation of the deployed worker for the run's first message."""
    worker = build_services(api.ports, deployed_tasks(), api.settings).worker
    worker.handle(ResumeMessage(run_id, 0), Invocation("api-client", lambda: 900.0, 900.0))


def test_every_request_is_signed_with_sigv4_for_execute_api(served: Served):
    client = _client(served)
    handle = client.trigger("ping", 3, tags=["a"])
    client.retrieve(handle.run_id)
    client.list_runs(task="ping", limit=5)
    client.tasks()
    client.queues()
    client.pause_queue("orders")
    client.set_queue_limit("orders", 4)
    client.resume_queue("orders")
    client.replay(handle.run_id)
    assert len(served.seen) == 9
    assert all(holds for *_, holds in served.seen), served.seen
    for _, _, auth, _ in served.seen:
        found = _AUTH.match(auth)
        assert found is not None
        assert (found["key"], found["region"], found["service"]) == (KEY_ID, REGION, "execute-api")
        assert {"host", "x-amz-date"} <= set(found["signed"].split(";"))


def test_a_request_signed_with_another_secret_is_refused(served: Served):
    with pytest.raises(ApiRequestError) as refused:
        _client(served, secret="not-the-secret").tasks()
    assert refused.value.status == 403
    assert [holds for *_, holds in served.seen] == [False]


def test_runs_come_back_as_the_direct_clients_models(served: Served):
    client = _client(served)
    created = [client.trigger("process-order", {**ORDER, "order_id": f"o-{i}"}) for i in range(3)]
    direct = Runs(served.api.ports.store)
    for handle in created:
        assert client.retrieve(handle.run_id) == direct.retrieve(handle.run_id)
    first = client.list_runs(task="process-order", limit=2)
    assert isinstance(first, RunPage)
    assert first.runs == direct.list(task="process-order", limit=2)
    assert first.next_cursor is not None
    rest = client.list_runs(task="process-order", limit=2, cursor=first.next_cursor)
    listed = [r.run_id for r in [*first.runs, *rest.runs]]
    assert sorted(listed) == sorted(h.run_id for h in created)
    batch = client.trigger_batch("process-order", [{"payload": ORDER}, {"payload": {}}])
    assert [(r.index, r.status) for r in batch] == [(0, 202), (1, 422)]
    assert batch[0].run_id is not None
    assert batch[1].error is not None
    assert batch[1].error.type == "validation_error"
    same = client.trigger("process-order", ORDER, idempotency_key="k-1")
    again = client.trigger("process-order", ORDER, idempotency_key="k-1")
    assert (again.run_id, again.cached, same.cached) == (same.run_id, True, False)


def test_wait_reads_the_run_until_it_ends(served: Served):
    client = _client(served)
    handle = client.trigger("ping", 21)
    _ran(served.api, handle.run_id)
    done = client.wait(handle.run_id, timeout=10)
    assert (done.status.value, done.output is not None) == ("COMPLETED", True)
    assert done.output is not None
    assert done.output.value == 21


def test_wait_gives_up_after_its_timeout(served: Served):
    clock = [0.0]
    client = _client(
        served, sleep=lambda s: clock.__setitem__(0, clock[0] + s), monotonic=lambda: clock[0]
    )
    handle = client.trigger("ping", 1)
    with pytest.raises(RunWaitTimeoutError) as late:
        client.wait(handle.run_id, timeout=3, poll_interval=1)
    assert late.value.status == "QUEUED"


def test_replay_from_a_step_returns_the_new_run_linked_to_the_original(served: Served):
    client = _client(served)
    handle = client.trigger("ping", 7)
    entries = [
        JournalEntry(i, name, 0, EntryKind.STEP, EntryStatus.COMPLETED, result=str(i), position=i)
        for i, name in enumerate(["fetch", "charge"])
    ]
    served.api.ports.store.write_journal(handle.run_id, entries)
    replayed = client.replay(handle.run_id, from_step="charge")
    assert replayed.task_id == "ping"
    detail = client.retrieve(replayed.run_id)
    assert detail.replay_of == handle.run_id
    assert [line.name for line in detail.timeline if line.kind == "step"] == ["fetch"]
    with pytest.raises(UnknownStepError) as unknown:
        client.replay(handle.run_id, from_step="chrage")
    assert (unknown.value.step, unknown.value.known) == ("chrage", ["fetch", "charge"])
    assert unknown.value.run_id == handle.run_id


def test_errors_raise_what_the_direct_client_raises(served: Served):
    client = _client(served)
    with pytest.raises(RunNotFoundError):
        client.retrieve("run_missing")
    with pytest.raises(RunNotFoundError):
        client.replay("run_missing")
    with pytest.raises(UnknownTaskError, match="process-order"):
        client.trigger("no-such-task", {})
    with pytest.raises(PayloadValidationError) as invalid:
        client.trigger("process-order", {**ORDER, "amount_cents": 0})
    assert invalid.value.task_id == "process-order"
    assert "amount_cents" in [name for name, _ in invalid.value.errors]
    big = {**ORDER, "email": "a" * (served.api.settings.max_value_bytes + 1)}
    with pytest.raises(PayloadTooLarge) as large:
        client.trigger("process-order", big)
    assert large.value.limit == served.api.settings.max_value_bytes
    with pytest.raises(ConfigurationError, match="priority"):
        client.trigger("process-order", ORDER, priority=10**9)
    with pytest.raises(ApiRequestError) as bad:
        client.list_runs(cursor="forged")
    assert (bad.value.status, bad.value.type) == (400, "bad_cursor")
    assert all(holds for *_, holds in served.seen)


def test_the_region_comes_from_the_url_when_the_session_has_none():
    from botocore.session import Session  # noqa: PLC0415

    session = Session()
    session.set_credentials(KEY_ID, SECRET)
    client = ApiClient("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", session=session)
    assert client.region == "eu-west-3"
    with pytest.raises(ConfigurationError, match="region"):
        ApiClient("http://localhost:3000", session=session)


def test_a_base_url_must_be_http():
    from botocore.session import Session  # noqa: PLC0415

    session = Session()
    session.set_credentials(KEY_ID, SECRET)
    client = ApiClient("file:///etc", session=session, region=REGION)
    with pytest.raises(ConfigurationError, match="http"):
        client.tasks()


def test_tokens_are_completed_failed_and_read_through_the_api(served: Served):
    import datetime as dt  # noqa: PLC0415

    from durable_lambda.engine.tokens import TokenInfo, TokenStatus  # noqa: PLC0415
    from durable_lambda.errors import (  # noqa: PLC0415
        TokenAlreadyResolvedError,
        TokenNotFoundError,
    )

    client = _client(served)
    run = client.trigger("ping", 1)
    now = dt.datetime.now(dt.UTC)
    for token_id in ("tok_api_client_ok", "tok_api_client_bad", "tok_api_client_beat"):
        served.api.ports.tokens.create(  # type: ignore[union-attr]
            TokenInfo(token_id, run.run_id, TokenStatus.PENDING, now, heartbeat_timeout=60.0)
        )

    done = client.complete_token("tok_api_client_ok", {"approved": True})
    assert (done.status, done.run_id) == (TokenStatus.COMPLETED, run.run_id)
    read = client.retrieve_token("tok_api_client_ok")
    assert read.data == '{"approved":true}'
    assert read.resolved_at is not None
    failed = client.fail_token("tok_api_client_bad", "Declined", "no budget")
    assert failed.status is TokenStatus.FAILED
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("Declined", "no budget")
    beat = client.heartbeat_token("tok_api_client_beat")
    assert beat.status is TokenStatus.PENDING
    with pytest.raises(TokenAlreadyResolvedError):
        client.complete_token("tok_api_client_ok", 1)
    with pytest.raises(TokenNotFoundError):
        client.retrieve_token("tok_missing")
    assert all(holds for *_, holds in served.seen)


def test_cancel_answers_the_run_as_left_and_a_finished_run_raises(served: Served):
    from durable_lambda import RunStatus  # noqa: PLC0415
    from durable_lambda.errors import RunFinishedError  # noqa: PLC0415

    client = _client(served)
    handle = client.trigger("ping", 3)  # queued: no worker has taken it
    canceled = client.cancel(handle.run_id)
    assert (canceled.run_id, canceled.status) == (handle.run_id, RunStatus.CANCELED)
    with pytest.raises(RunFinishedError) as finished:
        client.cancel(handle.run_id)
    assert (finished.value.run_id, finished.value.status) == (handle.run_id, "CANCELED")
    with pytest.raises(RunNotFoundError):
        client.cancel("run_missing")
