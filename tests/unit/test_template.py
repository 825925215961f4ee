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


def _template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # type: ignore[no-any-return]  # noqa: S506 - SafeLoader subclass


def _evaluate(node: Any, parameters: dict[str, list[str]]) -> Any:
    """Fn::Split, Fn::Join and Ref over list parameters: enough to read the worker's ARNs."""
    if isinstance(node, dict) and len(node) == 1:
        [(name, value)] = node.items()
        if name == "Ref":
            return parameters[value]
        if name == "Join":
            delimiter, parts = value
            return delimiter.join(_evaluate(p, parameters) for p in _flat(parts, parameters))
        if name == "Split":
            delimiter, text = value
            return _evaluate(text, parameters).split(delimiter)
    return node


def _flat(parts: Any, parameters: dict[str, list[str]]) -> list[Any]:
    evaluated = _evaluate(parts, parameters)
    return evaluated if isinstance(evaluated, list) else [evaluated]


def test_the_worker_may_write_exactly_the_transact_tables_named():
    template = _template()
    parameter = template["Parameters"]["TransactTables"]
    assert (parameter["Type"], parameter["Default"]) == ("CommaDelimitedList", "")
    policies = template["Resources"]["WorkerFunction"]["Properties"]["Policies"]
    [conditional] = [p for p in policies if "If" in p]
    condition, policy, otherwise = conditional["If"]
    assert condition == "HasTransactTables"
    assert otherwise == {"Ref": "AWS::NoValue"}  # no tables named: no statement at all
    [statement] = policy["Statement"]
    # Every action a TransactWriteItems of puts, updates, deletes and checks needs.
    assert set(statement["Action"]) >= {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
    arns = _evaluate(statement["Resource"], {"TransactTables": ["stock", "orders"]})
    assert arns == ["arn:aws:dynamodb:*:*:table/stock", "arn:aws:dynamodb:*:*:table/orders"]
    assert set(statement["Condition"]["StringEquals"]) == {
        "aws:RequestedRegion",
        "aws:ResourceAccount",
    }
