"""template.yaml: settings that no linter checks for us."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn_template import resources as _resources
from cfn_template import saved_queries
from insights import run_query

from durable_lambda.run_metrics import METRIC_NAMES


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
                (name,) = re.findall(r'MetricName="(\w+)"', metric[0]["expression"])
                assert metric[0]["expression"].startswith("SEARCH('{DurableLambda,service,task_id}")
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
