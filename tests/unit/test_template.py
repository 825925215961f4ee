"""template.yaml: settings that no linter checks for us."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short intrinsic tags (!Ref, !Sub...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


def _resources() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]  # noqa: S506 - SafeLoader subclass


def test_worker_allows_recursive_loops_exactly():
    # Lambda cuts Lambda->SQS->Lambda chains after ~16 hops unless this is "Allow";
    # neither cfn-lint nor sam validate catches a misspelt value.
    worker = _resources()["WorkerFunction"]["Properties"]
    assert worker["RecursiveLoop"] == "Allow"


def test_worker_reports_batch_item_failures_and_caps_concurrency():
    worker = _resources()["WorkerFunction"]["Properties"]
    (event,) = [e["Properties"] for e in worker["Events"].values() if e["Type"] == "SQS"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumConcurrency" in event["ScalingConfig"]
    assert "ReservedConcurrentExecutions" in worker


def test_resume_queue_dead_letters_after_max_receive_count():
    queue = _resources()["ResumeQueue"]["Properties"]
    assert "maxReceiveCount" in queue["RedrivePolicy"]


def test_scheduler_runs_every_minute():
    scheduler = _resources()["SchedulerFunction"]["Properties"]
    schedules = [e["Properties"] for e in scheduler["Events"].values() if e["Type"] == "Schedule"]
    assert schedules[0]["Schedule"] == "rate(1 minute)"


def test_the_api_is_iam_authorised_unless_a_jwt_user_pool_is_given():
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert template["Parameters"]["ApiJwtUserPoolArn"]["Default"] == ""
    method = template["Resources"]["ApiProxyMethod"]["Properties"]
    condition, jwt, default = method["AuthorizationType"]["If"]
    assert (condition, jwt, default) == ("HasApiJwtAuthorizer", "COGNITO_USER_POOLS", "AWS_IAM")
    assert template["Resources"]["ApiJwtAuthorizer"]["Condition"] == "HasApiJwtAuthorizer"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    handler = template["Resources"]["ApiFunction"]["Properties"]["Handler"]
    assert handler == "functions.api.app.handler"
    assert (TEMPLATE.parent / "functions" / "api" / "app.py").exists()
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert "DL_API_CURSOR_KEY" in variables
