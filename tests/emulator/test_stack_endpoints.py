"""Per-service endpoints reach the stack's own clients and every function process.

A second moto server stands in for LocalStack: with ``AWS_ENDPOINT_URL_SQS`` and
``AWS_ENDPOINT_URL_S3`` pointing at it, the stack's queues and blobs live there
while DynamoDB stays on the embedded server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_lambda.engine.state import RunStatus
from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import DEFAULT_REGION as REGION
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.moto]

HERE = Path(__file__).parent


#: A moto server in a process of its own: moto's state is per process, so a
#: second server in this one would share the embedded server's resources.
OTHER_SERVER = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
"""


@pytest.fixture
def other_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The endpoint URL of a moto server in another process (LocalStack's stand-in)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", OTHER_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _resources(endpoint_url: str) -> tuple[list[str], list[str], list[str]]:
    """Tables, queue URLs and buckets at ``endpoint_url``."""
    session = EndpointSession(endpoint_url, REGION)
    tables = session.client("dynamodb").list_tables()["TableNames"]
    queues = session.client("sqs").list_queues().get("QueueUrls", [])
    buckets = [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]]
    return tables, queues, buckets


def _object_count(endpoint_url: str, bucket: str) -> int:
    s3 = EndpointSession(endpoint_url, REGION).client("s3")
    return int(s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0))


def test_sqs_and_s3_on_another_endpoint_dynamodb_on_the_embedded_server(
    other_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", other_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", other_server)
    stack = EmulatedStack(
        Settings(table_name="dl-endpoints", bucket_name="dl-endpoints", inline_limit=1024),
        task_modules=["emu_endpoint_tasks"],
        timeout=10.0,
        pythonpath=[str(HERE)],
        scheduler_interval=1.0,
        log_dir=tmp_path,
    )
    with stack:
        env = stack.env()
        moto_url = stack.moto.endpoint_url
        handle = stack.trigger("emu-big", {"size": 5000})
        run = stack.wait_for(handle.run_id, timeout=60)
        embedded = _resources(moto_url)
        other = _resources(other_server)
        blobs = _object_count(other_server, stack.settings.bucket_name)
        messages = stack.poller.stats.messages

    assert run.status is RunStatus.COMPLETED, (tmp_path / "worker.log").read_text()
    assert run.output == "5000"
    # Every function process was told where each service is.
    assert env["AWS_ENDPOINT_URL_SQS"] == other_server
    assert env["AWS_ENDPOINT_URL_S3"] == other_server
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == moto_url
    # DynamoDB on the embedded server only; queues and the bucket on the other only.
    # (In-process moto servers share one state: earlier stacks' resources may be there.)
    tables, queues, buckets = embedded
    assert "dl-endpoints" in tables
    assert not [q for q in queues if q.rsplit("/", 1)[1].startswith("dl-endpoints")]
    assert "dl-endpoints" not in buckets
    tables, queues, buckets = other
    assert tables == []
    assert sorted(q.rsplit("/", 1)[1] for q in queues) == [
        "dl-endpoints-dlq",
        "dl-endpoints-resume",
    ]
    assert buckets == ["dl-endpoints"]
    # The step's 5,000-byte result went to the other server's S3 (from the worker
    # process), and the run's messages went through its SQS.
    assert blobs >= 1
    assert messages >= 2
