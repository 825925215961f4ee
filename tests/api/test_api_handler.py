"""The deployed handler (functions/api/app.py): built from the environment, catalog published."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
from api_support import SETTINGS, Context, event

from durable_lambda import api as api_package
from durable_lambda.adapters.aws.dynamodb.catalog import DynamoDBCatalogStore
from durable_lambda.settings import (
    ENV_API_CURSOR_KEY,
    ENV_BUCKET,
    ENV_DLQ,
    ENV_RESUME_QUEUE,
    ENV_TABLE,
    ENV_TASK_MODULES,
)

pytestmark = pytest.mark.moto


def test_the_lambda_handler_triggers_a_task_it_imports_and_publishes_its_catalog(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with moto.mock_aws():
        settings = ensure_resources(SETTINGS, boto3.session.Session(region_name="us-east-1"))
        for name, value in (
            (ENV_TABLE, settings.table_name),
            (ENV_BUCKET, settings.bucket_name),
            (ENV_RESUME_QUEUE, settings.resume_queue_url),
            (ENV_DLQ, settings.dlq_url),
            (ENV_TASK_MODULES, "functions.tasks.orders"),
            (ENV_API_CURSOR_KEY, "k"),
        ):
            monkeypatch.setenv(name, value)
        api_package.reset()
        sys.modules.pop("functions.api.app", None)
        try:
            app = importlib.import_module("functions.api.app")  # warm(): the cold start
            response = app.handler(event("api_trigger"), Context())
            assert response["statusCode"] == 202
            run_id = json.loads(response["body"])["run_id"]
            catalog = DynamoDBCatalogStore(boto3.client("dynamodb"), settings.table_name)
            assert catalog.get("process-order") is not None  # published by the cold start
            got = app.handler(
                event("api_get_run", path=f"/runs/{run_id}", pathParameters={"run_id": run_id}),
                Context(),
            )
            assert json.loads(got["body"])["status"] == "QUEUED"
        finally:
            api_package.reset()
