"""template.yaml translated offline by the SAM translator and deployed into moto's CloudFormation.

What ``sam deploy`` would create, checked on the resources moto built from it.
Resource types moto's CloudFormation lacks are named in ``NOT_IN_MOTO`` and
checked by the offline tests in ``tests/unit/test_template.py`` instead.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cfn_template import TEMPLATE
from cfnlint.decode import decode_str
from moto import mock_aws
from samtranslator.translator.transform import transform

REGION = "us-east-1"
CODE_BUCKET = "deploy-code"
#: Types moto's CloudFormation does not create (it skips them with a warning).
NOT_IN_MOTO = {
    "AWS::S3::BucketPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::QueryDefinition",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGateway::Stage",
}
#: Properties moto's CloudFormation accepts but does not apply; checked on the
#: translated template instead of on the created resource.
MOTO_IGNORES = {
    "AWS::DynamoDB::Table": "TimeToLiveSpecification",
    "AWS::S3::Bucket": "LifecycleConfiguration",
    "AWS::Lambda::Function": "Architectures",
}
#: The only managed policies SAM attaches: logs, X-Ray (Tracing: Active) and the
#: SQS event source's receive/delete. AWS-owned, outside our template's control.
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
}


class _ManagedPolicies:
    """What the translator would look up in IAM: the ARNs of the policies it attaches."""

    def load(self) -> dict[str, str]:
        return {arn.rsplit("/", 1)[1]: arn for arn in SAM_MANAGED_POLICIES}


def _translated() -> dict[str, Any]:
    template, _ = decode_str(TEMPLATE.read_text())
    plain = json.loads(json.dumps(template))
    # What `sam package` does: the code goes to S3 and CodeUri points at it.
    plain["Globals"]["Function"]["CodeUri"] = f"s3://{CODE_BUCKET}/code.zip"
    return transform(plain, {}, _ManagedPolicies())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack(monkeypatch_module: Any) -> Iterator[dict[str, Any]]:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", REGION)
    translated = _translated()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=CODE_BUCKET)
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("functions/__init__.py", "")
        s3.put_object(Bucket=CODE_BUCKET, Key="code.zip", Body=code.getvalue())
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName="dl",
            TemplateBody=json.dumps(translated),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[
                {"ParameterKey": "MaxReceiveCount", "ParameterValue": "4"},
                # Named tables: moto drops an Fn::If that yields AWS::NoValue in a list
                # as None, so the stack is created with the transact policy present.
                {"ParameterKey": "TransactTables", "ParameterValue": "stock,orders"},
            ],
        )
        described = cfn.describe_stacks(StackName="dl")["Stacks"][0]
        summaries = cfn.list_stack_resources(StackName="dl")["StackResourceSummaries"]
        yield {
            "template": translated,
            "status": described["StackStatus"],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]},
            "physical": {
                s["LogicalResourceId"]: s["PhysicalResourceId"]
                for s in summaries
                if s["LogicalResourceId"]
            },
        }


def _translated_properties(stack: dict[str, Any], logical: str) -> dict[str, Any]:
    return stack["template"]["Resources"][logical]["Properties"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_stack_creates_every_resource_moto_supports(stack):
    assert stack["status"] == "CREATE_COMPLETE"
    resources = stack["template"]["Resources"]
    # Conditional resources (the JWT authoriser, without a user pool) are not created.
    unconditional = {name for name, r in resources.items() if "Condition" not in r}
    missing = {resources[name]["Type"] for name in unconditional - set(stack["physical"])}
    assert missing == NOT_IN_MOTO  # a new type moto lacks must be named; one it gains, checked


def test_the_table_has_its_keys_indexes_ttl_and_on_demand_billing(stack):
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.describe_table(TableName=stack["outputs"]["RunsTableName"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    indexes = {i["IndexName"] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {"by_task_status", "by_status", "by_due"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = _translated_properties(stack, "RunsTable")[MOTO_IGNORES["AWS::DynamoDB::Table"]]
    assert ttl == {"AttributeName": "ttl", "Enabled": True}


def test_the_bucket_is_encrypted_and_expires_blobs(stack):
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack["outputs"]["BlobBucketName"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = _translated_properties(stack, "BlobBucket")[MOTO_IGNORES["AWS::S3::Bucket"]]
    (rule,) = lifecycle["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "BlobRetentionDays"}


def test_the_resume_queue_dead_letters_after_max_receive_count(stack):
    sqs = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack["outputs"]["ResumeQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=stack["outputs"]["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 4}
    assert int(attributes["VisibilityTimeout"]) == 5400  # 6 x the longest worker timeout


def test_the_functions_run_python_3_12_on_arm_with_the_stacks_names(stack):
    lam = boto3.client("lambda", region_name=REGION)
    outputs = stack["outputs"]
    for name in (outputs["WorkerFunctionName"], outputs["SchedulerFunctionName"]):
        config = lam.get_function_configuration(FunctionName=name)
        assert config["Runtime"] == "python3.12"
        variables = config["Environment"]["Variables"]
        assert variables["DL_TABLE_NAME"] == outputs["RunsTableName"]
        assert variables["DL_BUCKET_NAME"] == outputs["BlobBucketName"]
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    for logical in ("WorkerFunction", "SchedulerFunction"):
        properties = _translated_properties(stack, logical)
        assert properties[MOTO_IGNORES["AWS::Lambda::Function"]] == ["arm64"]
    worker = lam.get_function_configuration(FunctionName=outputs["WorkerFunctionName"])
    assert worker["Timeout"] == 900
    assert worker["Handler"] == "functions.worker.app.handler"


def test_the_worker_is_fed_by_the_resume_queue_with_partial_batch_failures(stack):
    lam = boto3.client("lambda", region_name=REGION)
    (mapping,) = lam.list_event_source_mappings(
        FunctionName=stack["outputs"]["WorkerFunctionName"]
    )["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(stack["outputs"]["ResumeQueueUrl"].rsplit("/")[-1])
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_sam_attaches_no_managed_policy_beyond_logs_xray_and_the_sqs_event_source(stack):
    roles = [r for r in stack["template"]["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= SAM_MANAGED_POLICIES
