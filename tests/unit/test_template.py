"""template.yaml: settings that no linter checks for us."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfn_template import TEMPLATE, saved_queries
from cfn_template import resources as _resources
from cfn_template import template as _template
from insights import run_query

from durable_lambda.adapters.aws.dynamodb.retention import STREAM_FILTER
from durable_lambda.run_metrics import METRIC_NAMES, PER_QUEUE, RUN_COUNTS, SERVICE_ONLY


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


def test_the_reaper_hears_only_ttl_removals_of_meta_items_from_the_tables_stream():
    table = _resources()["RunsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    reaper = _resources()["ReaperFunction"]["Properties"]
    [event] = reaper["Events"].values()
    assert event["Type"] == "DynamoDB"
    assert event["Properties"]["Stream"] == {"GetAtt": "RunsTable.StreamArn"}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    [pattern] = event["Properties"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == STREAM_FILTER
    assert _allowed(reaper) == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchWriteItem"}


def _dashboard_body() -> dict[str, Any]:
    sub = _resources()["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    body, variables = sub
    # Substitute like CloudFormation would: ${Name} for a variable, the rest to placeholders.
    text = re.sub(r"\$\{([\w:.]+)\}", lambda m: str(variables.get(m.group(1), "x")), body)
    return json.loads(text)  # type: ignore[no-any-return]


def test_the_dashboard_shows_only_metrics_the_code_emits():
    ours, aws = set(), set()
    for widget in _dashboard_body()["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):  # a SEARCH expression over our namespace
                expression = metric[0]["expression"]
                (name,) = re.findall(r'MetricName="(\w+)"', expression)
                (dimensions,) = re.findall(r"SEARCH\('\{DurableLambda,([\w,]+)\}", expression)
                allowed = {
                    "service": (*SERVICE_ONLY, *RUN_COUNTS),
                    "service,queue": PER_QUEUE,
                    "service,task_id": tuple(set(METRIC_NAMES) - set(SERVICE_ONLY)),
                }
                assert name in allowed[dimensions], (name, dimensions)  # written so
                ours.add(name)
            else:
                aws.add((metric[0], metric[1]))
    assert ours == set(METRIC_NAMES)  # every metric shown, and nothing shown that is never emitted
    assert {namespace for namespace, _ in aws} == {"AWS/Lambda", "AWS/SQS"}


def test_alarms_on_our_namespace_watch_metrics_the_code_emits_service_wide():
    alarms = [
        r["Properties"]
        for r in _resources().values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "DurableLambda"
    ]
    assert alarms
    for alarm in alarms:
        assert alarm["MetricName"] in METRIC_NAMES
        # The service-wide series RunMetrics writes beside the per-task one.
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "durable-lambda"}]


def test_every_saved_query_is_one_the_evaluator_reads():
    queries = saved_queries()
    assert set(queries) == {
        "RunTimelineQuery",
        "FailedRunsQuery",
        "SlowestStepsQuery",
        "RetriesByStepQuery",
        "RunsByHopsQuery",
    }
    row = {"message": "step attempt", "outcome": "retrying", "run_id": "RUN_ID", "hops": 1}
    for query in queries.values():
        run_query(query, [dict(row)])  # raises ValueError on anything it cannot read


def test_the_evaluator_refuses_a_command_it_does_not_know():
    with pytest.raises(ValueError, match="parse"):
        run_query("parse @message 'x'", [])


#: IAM actions behind each boto3 call the AWS adapters make. A new call must be
#: classified here, which makes its author grant it in template.yaml.
CALL_ACTIONS = {
    "get_item": {"dynamodb:GetItem"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "query": {"dynamodb:Query"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem"},
    "transact_write_items": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},
    "put_object": {"s3:PutObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "send_message": {"sqs:SendMessage"},
    "send_message_batch": {"sqs:SendMessage"},
    "change_message_visibility": {"sqs:ChangeMessageVisibility"},
    "receive_message": {"sqs:ReceiveMessage"},
    "delete_message": {"sqs:DeleteMessage"},
    "describe_table": {"dynamodb:DescribeTable"},
}
#: Calls only made on the user's own tables (ctx.transact names a failed item's key).
TRANSACT_ONLY = {"dynamodb:DescribeTable"}
#: Calls only the scheduler makes: it drains the dead-letter queue.
SCHEDULER_ONLY = {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
ADAPTERS = Path(__file__).resolve().parents[2] / "durable_lambda" / "adapters" / "aws"


def _functions() -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in _resources().items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements on this stack's resources (the user's transact tables are apart)."""
    statements = []
    for policy in function["Policies"]:
        if "If" in policy and policy["If"][0] == "HasTransactTables":
            continue  # the user's own tables: see test_the_worker_may_write_exactly_the_...
        # A SAM policy template ({"DynamoDBCrudPolicy": ...}) grants far more than we use.
        assert set(policy) == {"Version", "Statement"}, f"not an explicit policy: {policy}"
        statements.extend(policy["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allowed(function: dict[str, Any]) -> set[str]:
    return {a for s in _statements(function) for a in _as_list(s["Action"])}


def test_function_policies_name_each_action_on_this_stacks_resources_only():
    resources = _resources()
    for name, function in _functions().items():
        for statement in _statements(function):
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{name}: wildcard action {action}"
            for resource in _as_list(statement["Resource"]):
                # !GetAtt X.Arn, or !Sub "${X.Arn}/..." naming one of this stack's resources.
                text = resource.get("GetAtt") or resource.get("Sub")
                assert isinstance(text, str), f"{name}: resource {resource} is not this stack's"
                (logical,) = set(re.findall(r"^(\w+)\.Arn$|\$\{(\w+)\.Arn\}", text)[0]) - {""}
                assert logical in resources, f"{name}: {resource} names no resource of the stack"


def test_the_policies_allow_every_call_the_aws_adapters_make():
    called = set()
    for path in ADAPTERS.rglob("*.py"):
        text = path.read_text()
        # A paginator makes the calls of the operation it pages.
        # (``self.client`` or a helper's own ``client`` argument.)
        called |= set(re.findall(r"\bclient\.(\w+)\(", text)) - {"get_paginator"}
        called |= set(re.findall(r"\bclient\.get_paginator\(\"(\w+)\"\)", text))
    unknown = called - set(CALL_ACTIONS)
    assert not unknown, f"classify these boto3 calls in CALL_ACTIONS: {sorted(unknown)}"
    needed = set().union(*(CALL_ACTIONS[call] for call in called))
    functions = _functions()
    worker = functions["WorkerFunction"]
    assert needed - SCHEDULER_ONLY - TRANSACT_ONLY <= _allowed(worker)
    assert needed - TRANSACT_ONLY - {"sqs:ChangeMessageVisibility"} <= _allowed(
        functions["SchedulerFunction"]
    )
    [transact] = [p["If"][1] for p in worker["Policies"] if "If" in p]
    assert {a for s in transact["Statement"] for a in _as_list(s["Action"])} >= TRANSACT_ONLY


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


def test_the_api_is_iam_authorised_unless_a_jwt_user_pool_is_given():
    template = _template()
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


def _overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    text = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
    return dict(item.split("=", 1) for item in text.split())


@pytest.mark.parametrize("env", ["default", "dev"])
def test_samconfig_environments_override_only_parameters_the_template_accepts(env):
    parameters = _template()["Parameters"]
    for name, value in _overrides(env).items():
        assert name in parameters, f"samconfig [{env}] overrides unknown parameter {name}"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
        if "MinValue" in spec:
            assert int(value) >= spec["MinValue"], (name, value)
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (name, value)


def test_the_dev_environment_is_its_own_stack():
    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    stacks = {env: config[env]["deploy"]["parameters"]["stack_name"] for env in ("default", "dev")}
    assert stacks["default"] != stacks["dev"]
    assert _overrides("dev")["LogLevel"] == "DEBUG"


def test_every_function_imports_the_task_modules_the_parameter_names():
    variables = _template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DL_TASK_MODULES"] == {"Ref": "TaskModules"}
    pattern = _template()["Parameters"]["TaskModules"]["AllowedPattern"]
    assert re.fullmatch(pattern, "functions.tasks")
    assert re.fullmatch(pattern, "src.tasks.orders,src.tasks.reports")
    assert not re.fullmatch(pattern, "tasks; rm -rf /")


def _method_path(resources: dict[str, Any], method: dict[str, Any]) -> str:
    """The full path of an API Gateway method, walking its resources up to the root."""
    parts: list[str] = []
    ref = method["Properties"]["ResourceId"]
    while isinstance(ref, dict) and "Ref" in ref:
        resource = resources[ref["Ref"]]["Properties"]
        parts.append(resource["PathPart"])
        ref = resource["ParentId"]
    assert ref == {"GetAtt": "RestApi.RootResourceId"}, ref
    return "/" + "/".join(reversed(parts))


def test_only_the_callback_route_is_unauthenticated():
    resources = _resources()
    methods = {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::ApiGateway::Method"
    }
    open_methods = {
        (_method_path(resources, m), m["Properties"]["HttpMethod"])
        for m in methods.values()
        if m["Properties"]["AuthorizationType"] == "NONE"
    }
    assert open_methods == {("/callbacks/{token_id}", "POST")}
    for method in methods.values():
        properties = method["Properties"]
        if properties["AuthorizationType"] == "NONE":
            # Same function, same proxy integration: the handler checks the secret.
            assert (
                properties["Integration"] == methods["ApiProxyMethod"]["Properties"]["Integration"]
            )
            continue
        condition, jwt, default = properties["AuthorizationType"]["If"]
        assert (condition, jwt, default) == ("HasApiJwtAuthorizer", "COGNITO_USER_POOLS", "AWS_IAM")
    # Every method is in the deployment, or API Gateway serves a stale API.
    depends = resources["ApiDeployment"]["DependsOn"]
    depends = [depends] if isinstance(depends, str) else depends
    assert set(methods) <= set(depends)


def test_the_worker_knows_the_api_base_url_for_token_urls():
    worker = _resources()["WorkerFunction"]["Properties"]
    base = worker["Environment"]["Variables"]["DL_API_BASE_URL"]
    assert base == {"Sub": "https://${RestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"}
    assert _resources()["ApiStage"]["Properties"]["StageName"] == "v1"
