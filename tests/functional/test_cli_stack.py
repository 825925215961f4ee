"""The CLI against a deployed stack: ``--stack`` (its CloudFormation outputs) and ``--api-url``.

The stack is a moto CloudFormation stack whose outputs name the table, bucket
and queue the ``deployed`` fixture made; the HTTP API is the api handler served
on localhost by ``ApiServer``, refusing any request whose SigV4 signature is
not the one botocore computes with the test credentials.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from test_cli import (  # noqa: F401 - the fixture
    Deployed,
    cli,
    cli_json,
    deployed,
    work_off_queue,
)
from test_cli_tokens import waiting_run, work_off

from durable_lambda.adapters.aws import aws_ports
from durable_lambda.api import ApiService, build_api
from durable_lambda.local.http_api import ApiServer
from durable_lambda.services import build_services
from durable_lambda.task import default_registry

pytestmark = pytest.mark.moto

STACK = "dl-cli-stack"
_AUTH = re.compile(  # the Authorization header SigV4 writes
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/execute-api/aws4_request,"
    r" SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def make_stack(target: Deployed, name: str = STACK, **extra: str) -> None:
    """A stack whose outputs are the deployed table, bucket and queue (plus ``extra``)."""
    outputs = {
        "RunsTableName": target.settings.table_name,
        "BlobBucketName": target.settings.bucket_name,
        "ResumeQueueUrl": target.settings.resume_queue_url,
        **extra,
    }
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    target.session.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@pytest.fixture
def stacked(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:  # noqa: F811
    """The deployed resources named only by the stack: no DL_* variable is set."""
    make_stack(deployed)
    for name in ("DL_TABLE_NAME", "DL_BUCKET_NAME", "DL_RESUME_QUEUE_URL"):
        monkeypatch.delenv(name)
    return deployed


def test_stack_outputs_name_the_table_bucket_and_queue_of_every_command(stacked: Deployed):
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}', "--stack", STACK)[
        "run_id"
    ]
    # The run is in the stack's table, and its message on the stack's queue.
    assert stacked.services().client.get_run(run_id).task_id == "cli-greet"
    work_off(stacked)
    assert [r["run_id"] for r in cli_json("runs", "list", "--stack", STACK)] == [run_id]
    assert cli_json("runs", "show", run_id, "--stack", STACK)["run"]["output"] == "hello ADA"
    replayed = cli_json("runs", "replay", run_id, "--stack", STACK)
    assert replayed["replay_of"] == run_id
    queues = cli_json("queues", "list", "--stack", STACK)
    assert "cli-greetings" in [q["queue"] for q in queues]
    assert cli_json("queues", "pause", "cli-greetings", "--stack", STACK)["paused"] is True
    assert cli_json("replay-check", "--stack", STACK)["ok"] is True
    listed = cli_json("tasks", "list", "--stack", STACK, "-m", "cli_tasks")
    assert "cli-greet" in [t["task_id"] for t in listed]


def test_without_the_stack_the_same_command_misses_the_table(stacked: Deployed):
    # The default table does not exist: the stack's outputs are what found it above.
    result = cli("runs", "list")
    assert result.exit_code == 1
    assert "ResourceNotFoundException" in result.stderr


def test_an_unknown_stack_or_missing_output_is_one_line(stacked: Deployed):
    result = cli("runs", "list", "--stack", "no-such-stack")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: no CloudFormation stack 'no-such-stack' in this account and region"
    )
    result = cli("runs", "list", "--stack", STACK, "--via-api")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: stack {STACK!r} has no output 'ApiUrl' (its outputs: ")
    result = cli("runs", "list", "--via-api")
    assert result.exit_code == 1
    assert "--via-api takes the API URL from --stack NAME" in result.stderr


# -- through the HTTP API ------------------------------------------------------------------


@dataclass
class Served:
    url: str
    #: Per request: (method, path, signature verified).
    seen: list[tuple[str, str, bool]] = field(default_factory=list)


class _Context:
    aws_request_id = "cli-api"
    function_name = "api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def signed_by(event: dict[str, Any], key: str, secret: str) -> bool:
    """Whether the event's SigV4 signature is the one botocore computes with ``key``'s secret."""
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    headers = event["headers"]
    found = _AUTH.match(headers.get("authorization", ""))
    if found is None or found["key"] != key:
        return False
    signed = found["signed"].split(";")
    if "x-amz-date" not in signed or any(name not in headers for name in signed):
        return False
    query = urllib.parse.urlencode(event["multiValueQueryStringParameters"] or {}, doseq=True)
    url = f"http://{headers['host']}{urllib.parse.quote(event['path'])}"
    request = AWSRequest(
        method=event["httpMethod"],
        url=url + (f"?{query}" if query else ""),
        data=(event["body"] or "").encode(),
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(key, secret), "execute-api", found["region"])
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return bool(expected == found["signature"])


@pytest.fixture
def served(deployed: Deployed) -> Iterator[Served]:  # noqa: F811
    """The api handler on localhost over the deployed table, checking every signature."""
    import cli_tasks  # noqa: F401, PLC0415 - the API's process has the tasks registered
    import cli_token_tasks  # noqa: F401, PLC0415

    settings = deployed.settings
    client = build_services(aws_ports(settings, deployed.session), default_registry, settings)
    app = build_api(ApiService(client.client, settings))
    state = Served("")
    # The credentials the CLI signs with (moto's mock sets its own fake ones).
    credentials = deployed.session.get_credentials()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        holds = signed_by(event, credentials.access_key, credentials.secret_key)
        state.seen.append((event["httpMethod"], event["path"], holds))
        if not holds:
            return {"statusCode": 403, "body": '{"message": "signature does not match"}'}
        return dict(app.resolve(event, _Context()))

    with ApiServer(handler) as server:
        state.url = server.url
        yield state


def test_api_url_sends_each_command_through_the_signed_api(served: Served, deployed: Deployed):  # noqa: F811
    url = served.url
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}', "--api-url", url)[
        "run_id"
    ]
    work_off(deployed)
    [listed] = cli_json("runs", "list", "--api-url", url)
    assert (listed["run_id"], listed["status"]) == (run_id, "COMPLETED")
    shown = cli_json("runs", "show", run_id, "--api-url", url)
    assert shown["output"]["value"] == "hello ADA"
    assert [(e["kind"], e["name"]) for e in shown["timeline"] if e["kind"] == "step"] == [
        ("step", "shout")
    ]
    human = cli("runs", "show", run_id, "--api-url", url)
    assert human.exit_code == 0, human.output
    assert "shout" in human.stdout
    replayed = cli_json("runs", "replay", run_id, "--api-url", url)
    assert replayed["replay_of"] == run_id
    tasks = {t["task_id"]: t for t in cli_json("tasks", "list", "--api-url", url)}
    assert tasks["cli-greet"]["queue"]["name"] == "cli-greetings"
    assert tasks["cli-greet"]["payload_summary"] == "name*"

    paths = [(method, path) for method, path, _ in served.seen]
    assert ("POST", "/tasks/cli-greet/runs") in paths
    assert ("GET", f"/runs/{run_id}") in paths
    assert ("POST", f"/runs/{run_id}/replay") in paths
    assert ("GET", "/tasks") in paths
    assert all(holds for *_, holds in served.seen), served.seen


def test_tokens_through_the_api(served: Served, deployed: Deployed, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DL_TASK_MODULES", "cli_token_tasks")
    run_id, token_id = waiting_run(deployed)
    monkeypatch.delenv("DL_RESUME_QUEUE_URL")  # the API nudges the run, not the CLI
    shown = cli_json("tokens", "show", token_id, "--api-url", served.url)
    assert (shown["status"], shown["run_id"]) == ("PENDING", run_id)
    done = cli_json("tokens", "complete", token_id, "--data", '{"ok": 1}', "--api-url", served.url)
    assert done["status"] == "COMPLETED"
    assert ("POST", f"/tokens/{token_id}/complete", True) in served.seen
    work_off(deployed)
    assert json.loads(deployed.services().client.get_run(run_id).output) == {"data": {"ok": 1}}


def test_via_api_takes_the_stacks_api_url(served: Served, deployed: Deployed, monkeypatch):  # noqa: F811
    make_stack(deployed, "dl-cli-api", ApiUrl=served.url)
    monkeypatch.delenv("DL_TABLE_NAME")
    run_id = cli_json(
        "trigger", "cli-greet", "-p", '{"name": "x"}', "--stack", "dl-cli-api", "--via-api"
    )["run_id"]
    assert ("POST", "/tasks/cli-greet/runs", True) in served.seen
    [listed] = cli_json("runs", "list", "--stack", "dl-cli-api", "--via-api")
    assert listed["run_id"] == run_id


def test_an_api_refusal_is_one_line(served: Served, deployed: Deployed):  # noqa: F811
    result = cli("runs", "show", "run_missing", "--api-url", served.url)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert "run_missing" in line


def test_trigger_wait_and_batch_through_the_api(served: Served, deployed: Deployed, tmp_path):  # noqa: F811
    done = threading.Event()
    worker = threading.Thread(target=work_off_queue, args=(deployed, done), daemon=True)
    worker.start()
    try:
        result = cli(
            "trigger", "cli-greet", "-p", '{"name": "bo"}', "--api-url", served.url,
            "--wait", "--poll", "0.05", "--timeout", "120", "--json",
        )  # fmt: skip
    finally:
        done.set()
        worker.join()
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["status"], run["output"]["value"]) == ("COMPLETED", "hello BO")

    lines = tmp_path / "batch.jsonl"
    lines.write_text('{"name": "a"}\n{"nom": 1}\n')
    result = cli("trigger", "cli-greet", "--batch", f"@{lines}", "--api-url", served.url, "--json")
    assert result.exit_code == 1
    first, refused = json.loads(result.stdout)["results"]
    assert first["run_id"] is not None
    assert (refused["run_id"], refused["error"].split(":")[0]) == (None, "validation_error")
    assert ("POST", "/tasks/cli-greet/batch", True) in served.seen
