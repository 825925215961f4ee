"""Each service's endpoint from one resolver: explicit > per-service env > global env > fallback."""

from __future__ import annotations

from durable_lambda.local.endpoints import (
    Endpoints,
    RoutedSession,
    localstack_endpoints,
    resolve_endpoints,
    service_env,
)

MOTO = "http://127.0.0.1:5000"
STACK = "http://127.0.0.1:4566"


def test_per_service_variables_beat_the_global_one_and_the_fallback():
    environ = {"AWS_ENDPOINT_URL_SQS": STACK, "AWS_ENDPOINT_URL_S3": STACK}
    endpoints = resolve_endpoints(fallback=MOTO, environ=environ)
    assert endpoints.url("sqs") == STACK
    assert endpoints.url("s3") == STACK
    assert endpoints.url("dynamodb") == MOTO
    assert endpoints.url("cloudformation") == MOTO  # any other service: the fallback


def test_the_global_variable_beats_the_fallback():
    endpoints = resolve_endpoints(fallback=MOTO, environ={"AWS_ENDPOINT_URL": STACK})
    assert endpoints.url("dynamodb") == STACK


def test_explicit_arguments_beat_every_variable():
    environ = {"AWS_ENDPOINT_URL_SQS": "http://env-sqs", "AWS_ENDPOINT_URL": "http://env"}
    every = resolve_endpoints(endpoint_url=STACK, environ=environ)
    assert every.url("sqs") == STACK
    one = resolve_endpoints(per_service={"sqs": STACK, "s3": None}, environ=environ)
    assert (one.url("sqs"), one.url("s3")) == (STACK, "http://env")


def test_nothing_set_means_aws_itself():
    endpoints = resolve_endpoints(environ={})
    assert endpoints.url("dynamodb") is None
    assert endpoints.env() == {}


def test_the_environment_of_a_process_names_every_service_on_its_own():
    endpoints = resolve_endpoints(fallback=MOTO, environ={"AWS_ENDPOINT_URL_SQS": STACK})
    env = endpoints.env()
    assert env["AWS_ENDPOINT_URL_SQS"] == STACK
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == MOTO
    assert env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == MOTO
    assert env["AWS_ENDPOINT_URL"] == MOTO
    assert service_env("logs") == "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"


def test_localstack_endpoints_follow_localstack_client_conventions(monkeypatch):
    monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    assert localstack_endpoints() == dict.fromkeys(("sqs", "s3", "logs"), "http://localhost:4566")
    monkeypatch.setenv("LOCALSTACK_HOST", "127.0.0.1:4600")
    assert localstack_endpoints(("sqs",)) == {"sqs": "http://127.0.0.1:4600"}


def test_a_routed_session_gives_each_client_its_service_endpoint():
    session = RoutedSession(
        Endpoints({"sqs": STACK, "dynamodb": MOTO}),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert session.client("sqs").meta.endpoint_url == STACK
    assert session.client(service_name="dynamodb").meta.endpoint_url == MOTO
    assert session.client("sqs", endpoint_url=MOTO).meta.endpoint_url == MOTO
    assert "amazonaws.com" in session.client("s3").meta.endpoint_url
