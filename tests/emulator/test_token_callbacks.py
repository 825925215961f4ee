"""An approval flow end to end on the emulated stack, over HTTP.

The run is triggered over the API handler (served on localhost), waits on a
token, and a webhook-style POST to the token's callback URL (its secret in the
URL, no AWS credentials) completes it; the run finishes with the data. A token
nobody completes times out and the run fails with ``TokenTimeoutError``. A
wrong secret is a 404 that leaves the token pending.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_lambda.api import ApiService, build_api
from durable_lambda.engine.state import RunStatus
from durable_lambda.local.http_api import ApiServer
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.moto]

HERE = Path(__file__).parent


@dataclass
class Deployment:
    stack: EmulatedStack
    base_url: str
    inbox: Path

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One plain HTTP request (no signing, as a webhook sender makes it)."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own localhost server
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def callback_url(self, order_id: str, timeout: float = 60.0) -> str:
        """The URL the task handed to the "webhook provider" (waits until it has)."""
        path = self.inbox / f"{order_id}.url"
        deadline = time.monotonic() + timeout
        while not path.exists() or not path.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no callback URL for {order_id} in {timeout:g} s")
            time.sleep(0.1)
        return path.read_text()


class _Context:
    """The parts of a Lambda context the API handler reads."""

    aws_request_id = "http-api"
    function_name = "api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    built: dict[str, Any] = {}

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        return dict(built["api"].resolve(event, _Context()))

    # The server's port must be known before the worker starts: tokens carry it.
    with ApiServer(handler) as server:
        base_url = server.url
        suffix = uuid.uuid4().hex[:8]
        settings = Settings(
            table_name=f"dl-tokens-{suffix}",
            bucket_name=f"dl-tokens-{suffix}",
            api_base_url=base_url,
        )
        inbox = tmp_path / "inbox"
        stack = EmulatedStack(
            settings,
            task_modules=["emu_token_tasks"],
            timeout=10.0,
            pythonpath=[str(HERE)],
            scheduler_interval=1.0,
            log_dir=tmp_path,
            env={"EMU_INBOX": str(inbox)},
        )
        with stack:
            built["api"] = build_api(ApiService(stack.client, stack.settings))
            yield Deployment(stack, base_url, inbox)


def trigger(deployment: Deployment, order_id: str, timeout: float) -> str:
    status, body = deployment.http(
        "POST",
        "/tasks/emu-approval/runs",
        {"payload": {"order_id": order_id, "timeout": timeout}},
    )
    assert status == 202, body
    return str(body["run_id"])


def test_a_webhook_completes_the_token_over_its_callback_url(deployment: Deployment):
    run_id = trigger(deployment, "o-1", timeout=600)
    url = deployment.callback_url("o-1")
    assert url.startswith(f"{deployment.base_url}/callbacks/tok_")
    token_id = url.split("/callbacks/")[1].split("?")[0]

    # Anyone without the secret learns nothing and changes nothing.
    wrong = url.split("?secret=")[0] + "?secret=" + "x" * 43
    status, body = deployment.http("POST", wrong, {"approved": True})
    assert (status, body["error"]["type"]) == (404, "token_not_found")
    status, unknown = deployment.http("POST", "/callbacks/tok_nobody?secret=x", {})
    assert status == 404
    assert body["error"]["message"].replace(token_id, "?") == unknown["error"]["message"].replace(
        "tok_nobody", "?"
    )
    status, token = deployment.http("GET", f"/tokens/{token_id}")
    assert (status, token["status"], token["run_id"]) == (200, "PENDING", run_id)

    status, body = deployment.http("POST", url, {"approved": True, "by": "reviewer"})
    assert (status, body) == (200, {"token_id": token_id, "status": "COMPLETED"})
    run = deployment.stack.wait_for(run_id, timeout=60)
    assert run.status is RunStatus.COMPLETED, run.error
    assert json.loads(run.output or "null") == {
        "order_id": "o-1",
        "decision": {"approved": True, "by": "reviewer"},
    }

    # A second delivery of the same webhook changes nothing.
    status, body = deployment.http("POST", url, {"approved": False})
    assert (status, body["error"]["type"]) == (409, "token_already_resolved")
    status, detail = deployment.http("GET", f"/runs/{run_id}")
    assert status == 200
    (created,) = [line for line in detail["timeline"] if line["kind"] == "token"]
    assert (created["token_id"], created["token_status"]) == (token_id, "COMPLETED")
    assert created["duration_ms"] is not None
    assert "secret" not in json.dumps(detail["timeline"])


def test_a_token_nobody_completes_times_out_and_fails_the_run(deployment: Deployment):
    run_id = trigger(deployment, "o-2", timeout=2)
    url = deployment.callback_url("o-2")
    run = deployment.stack.wait_for(run_id, timeout=60)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "durable_lambda.errors.TokenTimeoutError"
    assert "timed out" in run.error.message
    token_id = url.split("/callbacks/")[1].split("?")[0]
    status, token = deployment.http("GET", f"/tokens/{token_id}")
    assert (token["status"], token["timeout_reason"]) == ("TIMED_OUT", "timeout")
    # The webhook arriving late is refused; the run's outcome stands.
    status, body = deployment.http("POST", url, {"approved": True})
    assert (status, body["error"]["type"]) == (409, "token_already_resolved")
