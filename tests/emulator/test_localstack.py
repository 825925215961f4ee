"""The emulated stack with SQS and S3 on a real LocalStack, DynamoDB on the embedded moto server.

Skipped with the reason when no LocalStack answers at ``LOCALSTACK_HOST``
(default ``localhost:4566``); ``make localstack`` starts one in host mode and
sets ``DL_REQUIRE_LOCALSTACK=1``, under which an unreachable LocalStack fails.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from durable_lambda.engine.state import RunStatus
from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.endpoints import localstack_endpoints
from durable_lambda.local.moto_server import DEFAULT_REGION
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.localstack]

HERE = Path(__file__).parent


@pytest.fixture
def localstack(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """LocalStack's endpoints by service, once its health check answers."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    endpoints = localstack_endpoints()
    health = f"{endpoints['sqs']}/_localstack/health"
    try:
        with urllib.request.urlopen(health, timeout=3) as response:  # noqa: S310 - local URL
            response.read()
    except OSError as exc:
        message = f"no LocalStack at {health} ({exc}); `make localstack` starts one"
        if os.environ.get("DL_REQUIRE_LOCALSTACK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return endpoints


def test_a_run_completes_with_sqs_and_s3_on_localstack(localstack: dict[str, str], tmp_path):
    stack = EmulatedStack(
        Settings(table_name="dl-localstack", bucket_name="dl-localstack", inline_limit=1024),
        task_modules=["emu_endpoint_tasks"],
        timeout=10.0,
        pythonpath=[str(HERE)],
        scheduler_interval=1.0,
        log_dir=tmp_path,
        localstack=True,
    )
    with stack:
        handle = stack.trigger("emu-big", {"size": 5000})
        run = stack.wait_for(handle.run_id, timeout=90)
        moto = EndpointSession(stack.moto.endpoint_url, DEFAULT_REGION)
        tables = moto.client("dynamodb").list_tables()["TableNames"]
        on_localstack = EndpointSession(localstack["s3"], DEFAULT_REGION)
        listed = on_localstack.client("s3").list_objects_v2(Bucket="dl-localstack")
        queues = on_localstack.client("sqs").list_queues(QueueNamePrefix="dl-localstack")
        env = stack.env()

    assert run.status is RunStatus.COMPLETED, (tmp_path / "worker.log").read_text()
    assert run.output == "5000"
    assert tables == ["dl-localstack"]
    assert listed.get("KeyCount", 0) >= 1  # the step's 5,000-byte result, put by the worker
    assert len(queues.get("QueueUrls", [])) == 2
    assert env["AWS_ENDPOINT_URL_SQS"] == localstack["sqs"]
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] != localstack["sqs"]
