"""The public names are a contract: adding one is a decision, removing one a break."""

from __future__ import annotations

import os
import subprocess
import sys

import durable_lambda

EXPECTED = {
    "AbortRun",
    "ApiClient",
    "ApiRequestError",
    "BatchFailedError",
    "BatchItem",
    "BatchResult",
    "CompletionConfig",
    "CompletionReason",
    "Condition",
    "ItemStatus",
    "Client",
    "ConfigurationError",
    "DurableLambdaError",
    "NonDeterminismError",
    "PayloadTooLarge",
    "PayloadValidationError",
    "Queue",
    "RateLimit",
    "RetryAfter",
    "RetryPolicy",
    "RetryableError",
    "RunFailedError",
    "RunFinishedError",
    "RunHandle",
    "RunNotFoundError",
    "RunQuery",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "ScheduledPayload",
    "Settings",
    "StepFailedError",
    "StepInterruptedError",
    "SuspendSwallowedError",
    "Task",
    "TaskContext",
    "TerminalError",
    "Transaction",
    "WaitStrategy",
    "TokenAlreadyResolvedError",
    "TokenFailedError",
    "TokenNotFoundError",
    "TokenTimeoutError",
    "plugins",
    "redact_log_fields",
    "step",
    "task",
    "tokens",
    "wait",
}


def test_exported_names_are_frozen():
    assert set(durable_lambda.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(durable_lambda, name) is not None


def test_every_error_shares_one_root():
    for name in EXPECTED:
        value = getattr(durable_lambda, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, durable_lambda.DurableLambdaError), name


def test_what_the_client_takes_returns_and_raises_is_exported():
    for method, names in {
        durable_lambda.Client.get_run: {"RunRecord", "RunNotFoundError"},
        durable_lambda.Client.cancel_run: {"RunRecord", "RunNotFoundError", "RunFinishedError"},
        durable_lambda.Client.list_runs: {"RunQuery", "RunRecord"},
        durable_lambda.Client.trigger: {"RunHandle"},
    }.items():
        documented = f"{method.__annotations__} {method.__doc__}"
        for name in names:
            assert name in documented, (method.__name__, name)
            assert name in durable_lambda.__all__


def test_wait_namespace_has_its_functions():
    assert callable(durable_lambda.wait.for_)
    assert callable(durable_lambda.wait.until)
    assert callable(durable_lambda.wait.for_condition)
    for name in ("create_token", "for_token", "for_callback"):
        assert callable(getattr(durable_lambda.wait, name))


def test_tokens_namespace_has_its_functions():
    for name in ("complete", "fail", "heartbeat", "retrieve"):
        assert callable(getattr(durable_lambda.tokens, name))


def test_the_engine_imports_no_aws_library():
    code = (
        "import sys, durable_lambda.engine.execution, durable_lambda.worker, "
        "durable_lambda.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore'}))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, a literal script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _version_seen_with(tmp_path, prelude: str) -> str:
    code = f"{prelude}\nimport durable_lambda\nprint(durable_lambda.__version__)"
    env_path = os.pathsep.join([str(tmp_path), *sys.path])
    completed = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": env_path},
        cwd=tmp_path,  # not the checkout: its egg-info would name the version first
    )
    return completed.stdout.strip()


def test_version_comes_from_the_installed_distribution(tmp_path):
    # A distribution found first on the path stands in for a newer install.
    info = tmp_path / "durable_lambda-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: durable-lambda\nVersion: 9.8.7\n")
    assert _version_seen_with(tmp_path, "") == "9.8.7"


def test_version_has_a_fallback_when_the_package_is_not_installed(tmp_path):
    prelude = (
        "import importlib.metadata as m\n"
        "def missing(name):\n"
        "    raise m.PackageNotFoundError(name)\n"
        "m.version = missing"
    )
    assert _version_seen_with(tmp_path, prelude) == "0+unknown"
