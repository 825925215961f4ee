"""``durable-lambda runs logs``: a run's lines from CloudWatch Logs (moto) or log files."""

from __future__ import annotations

import json
import time

import pytest
from test_cli import Deployed, cli, cli_json, deployed  # noqa: F401 - the fixture
from test_cli_stack import make_stack
from test_cli_tokens import work_off

from durable_lambda.cli import logs as logs_module
from durable_lambda.engine.state import RunStatus
from durable_lambda.local.log_shipper import LogShipper

pytestmark = pytest.mark.moto

WORKER, SCHEDULER = "dl-worker", "dl-scheduler"


def line(run_id: str, message: str) -> str:
    """A worker log line as Powertools writes it, with the run id it handles."""
    return json.dumps({"level": "INFO", "message": message, "run_id": run_id})


def put(target: Deployed, group: str, *messages: str) -> None:
    logs = target.session.client("logs")
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="2026/11/30/[$LATEST]abc")
    now = int(time.time() * 1000)  # CloudWatch refuses events older than 14 days
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/30/[$LATEST]abc",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def test_logs_prints_only_the_runs_lines_from_the_stacks_function_groups(deployed: Deployed):  # noqa: F811
    make_stack(deployed, WorkerFunctionName=WORKER, SchedulerFunctionName=SCHEDULER)
    put(
        deployed,
        f"/aws/lambda/{WORKER}",
        line("run_A", "step shout attempt 1"),
        line("run_B", "someone else's step"),
        "START RequestId: 1 Version: $LATEST",
        line("run_A", "invocation finished"),
    )
    put(deployed, f"/aws/lambda/{SCHEDULER}", "re-sent run_A after 120 s", "tick")

    got = cli_json("runs", "logs", "run_A", "--stack", "dl-cli-stack")
    assert sorted((g["source"], g["message"]) for g in got) == sorted(
        [
            (f"/aws/lambda/{WORKER}", line("run_A", "step shout attempt 1")),
            (f"/aws/lambda/{WORKER}", line("run_A", "invocation finished")),
            (f"/aws/lambda/{SCHEDULER}", "re-sent run_A after 120 s"),
        ]
    )
    assert [g["timestamp"] for g in got] == sorted(g["timestamp"] for g in got)
    records = [g["record"] for g in got if g["record"] is not None]
    assert [r["message"] for r in records] == ["step shout attempt 1", "invocation finished"]
    assert all("run_B" not in g["message"] for g in got)

    only = cli_json("runs", "logs", "run_A", "--log-group", f"/aws/lambda/{SCHEDULER}")
    assert [g["message"] for g in only] == ["re-sent run_A after 120 s"]

    human = cli("runs", "logs", "run_B", "--stack", "dl-cli-stack")
    assert human.exit_code == 0, human.output
    assert "someone else's step" in human.stdout
    assert "run_A" not in human.stdout


def test_follow_reads_until_the_run_has_ended(deployed: Deployed):  # noqa: F811
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "x"}')["run_id"]
    work_off(deployed)  # the run has ended: one read, then the command returns
    put(deployed, "/aws/lambda/w", line(run_id, "done"), line("run_other", "no"))
    result = cli("runs", "logs", run_id, "--log-group", "/aws/lambda/w", "--follow", "--json")
    assert result.exit_code == 0, result.output
    [only] = [json.loads(text) for text in result.stdout.splitlines()]
    assert only["record"] == {"level": "INFO", "message": "done", "run_id": run_id}


def test_follow_prints_each_line_once_as_it_arrives(deployed: Deployed, monkeypatch):  # noqa: F811
    put(deployed, "/aws/lambda/w", line("run_F", "first"))
    reads: list[str] = []

    def status(target: object, run_id: str) -> RunStatus:
        reads.append(run_id)
        if len(reads) == 1:
            return RunStatus.RUNNING
        put(deployed, "/aws/lambda/w", line("run_F", "second"))  # logged while followed
        return RunStatus.COMPLETED

    monkeypatch.setattr(logs_module, "_status", status)
    result = cli(
        "runs", "logs", "run_F", "--log-group", "/aws/lambda/w", "-f", "--poll", "0", "--json"
    )
    assert result.exit_code == 0, result.output
    printed = [json.loads(text)["record"]["message"] for text in result.stdout.splitlines()]
    assert (printed, len(reads)) == (["first", "second"], 2)


def test_logs_reads_an_emulated_stacks_log_files(deployed: Deployed, tmp_path):  # noqa: F811
    (tmp_path / "worker.log").write_text(f"{line('run_A', 'a')}\n{line('run_B', 'b')}\n")
    (tmp_path / "scheduler.log").write_text("re-sent run_A\n")
    (tmp_path / "api.log").write_text("triggered run_A\nlisted runs\n")
    got = cli_json("runs", "logs", "run_A", "--log-dir", str(tmp_path))
    assert [(g["source"], g["message"]) for g in got] == [
        ("worker.log", line("run_A", "a")),
        ("scheduler.log", "re-sent run_A"),
        ("api.log", "triggered run_A"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "logs", "run_A"), "--stack NAME's function logs, --log-group GROUP or --log-dir"),
        (("runs", "logs", "run_A", "--log-dir", "/no/such/dir"), "no log directory '/no/such/dir'"),
        (("runs", "logs", "run_A", "--log-group", "/aws/lambda/none"), "ResourceNotFoundException"),
    ],
)
def test_logs_errors_are_one_line(deployed: Deployed, args, message):  # noqa: F811
    result = cli(*args)
    assert result.exit_code == 1
    [text] = result.stderr.strip().splitlines()
    assert message in text


def test_the_emulated_functions_log_files_ship_to_their_groups(deployed: Deployed, tmp_path):  # noqa: F811
    worker = tmp_path / "worker.log"
    last = line("run_S", "partial")
    worker.write_text(f"{line('run_S', 'first')}\n{line('run_T', 'other')}\n{last[:20]}")
    shipper = LogShipper(deployed.session.client("logs"), {worker: "dev-worker"})
    assert shipper.ship() == 2  # the unfinished last line waits for its newline
    with worker.open("a") as file:
        file.write(f"{last[20:]}\n")
    assert shipper.ship() == 1
    assert shipper.ship() == 0
    assert shipper.groups() == ["/aws/lambda/dev-worker"]
    got = cli_json("runs", "logs", "run_S", "--log-group", "/aws/lambda/dev-worker")
    assert [g["record"]["message"] for g in got] == ["first", "partial"]
    # A restarted dev stack ships into the groups it made before.
    again = LogShipper(deployed.session.client("logs"), {worker: "dev-worker"})
    assert again.ship() == 3
