"""The ``durable-lambda`` command on moto: each command, its ``--json`` output, and its errors."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from durable_lambda.adapters.aws import aws_ports
from durable_lambda.cli import app, main
from durable_lambda.engine.records import ResumeMessage
from durable_lambda.local.endpoints import Endpoints, RoutedSession
from durable_lambda.local.resources import ensure_resources
from durable_lambda.messages import decode_message
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry
from durable_lambda.worker import Invocation

pytestmark = pytest.mark.moto

ROOT = Path(__file__).resolve().parents[2]

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")


@dataclass
class Deployed:
    settings: Settings
    session: Any

    def services(self) -> Any:
        return build_services(
            aws_ports(self.settings, self.session), default_registry, self.settings
        )

    def handle(self, run_id: str) -> None:
        """One invocation of the deployed worker for the run's first message."""
        message = ResumeMessage(run_id, 0)
        self.services().worker.handle(message, Invocation("cli-test", lambda: 900.0, 900.0))


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """A table, bucket and resume queue on moto, named by the DL_* variables the CLI reads."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "DL_")) or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        session = RoutedSession(Endpoints(), region_name="us-east-1")  # models parsed once
        settings = ensure_resources(
            Settings(table_name="dl-cli", bucket_name="dl-cli-values"), session
        )
        monkeypatch.setenv("DL_TABLE_NAME", settings.table_name)
        monkeypatch.setenv("DL_BUCKET_NAME", settings.bucket_name)
        monkeypatch.setenv("DL_RESUME_QUEUE_URL", settings.resume_queue_url)
        monkeypatch.setenv("DL_TASK_MODULES", "cli_tasks")
        yield Deployed(settings, session)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def cli_json(*args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def work_off_queue(deployed: Deployed, until_run_ends: threading.Event) -> None:
    """The deployed worker's part: take resume messages off SQS and handle them."""
    services = deployed.services()
    sqs = deployed.session.client("sqs")
    url = deployed.settings.resume_queue_url
    while not until_run_ends.is_set():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            invocation = Invocation("cli-test", lambda: 900.0, 900.0)
            services.worker.handle(decode_message(message["Body"]), invocation)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_trigger_then_list_and_show_the_run(deployed: Deployed):
    triggered = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}', "--tag", "t1")
    run_id = triggered["run_id"]
    assert triggered["task_id"] == "cli-greet"

    listed = cli_json("runs", "list", "--task", "cli-greet")
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["payload"] == {"name": "ada"}
    assert listed[0]["status"] == "QUEUED"
    assert cli_json("runs", "list", "--tag", "other") == []
    assert cli_json("runs", "list", "--status", "COMPLETED") == []

    deployed.handle(run_id)
    shown = cli_json("runs", "show", run_id)
    assert shown["run"]["status"] == "COMPLETED"
    assert shown["run"]["output"] == "hello ADA"
    assert [(e["key"], e["status"], e["result"]) for e in shown["journal"]] == [
        ("shout#0", "COMPLETED", "ADA")
    ]
    assert "invocation_started" in [e["kind"] for e in shown["events"]]

    human = cli("runs", "show", run_id)
    assert human.exit_code == 0, human.output
    assert "shout#0" in human.stdout
    assert "COMPLETED" in human.stdout


def test_trigger_wait_follows_the_run_to_its_output(deployed: Deployed):
    done = threading.Event()
    worker = threading.Thread(target=work_off_queue, args=(deployed, done), daemon=True)
    worker.start()
    try:
        result = cli(
            "trigger",
            "cli-greet",
            "--payload",
            '{"name": "bo"}',
            "--wait",
            "--poll",
            "0.05",
            "--timeout",
            "120",
            "--json",
        )
    finally:
        done.set()
        worker.join()
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["status"], run["output"]) == ("COMPLETED", "hello BO")


def test_trigger_reads_the_payload_from_a_file(deployed: Deployed, tmp_path):
    payload = tmp_path / "payload.json"
    payload.write_text('{"name": "file"}')
    run_id = cli_json("trigger", "cli-greet", "--payload", f"@{payload}")["run_id"]
    [run] = cli_json("runs", "list")
    assert (run["run_id"], run["payload"]) == (run_id, {"name": "file"})


def test_runs_cancel_cancels_a_queued_run_and_refuses_a_finished_one(deployed: Deployed):
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "x"}')["run_id"]

    canceled = cli_json("runs", "cancel", run_id)

    assert (canceled["run_id"], canceled["status"]) == (run_id, "CANCELED")
    assert canceled["error"]["type"] == "RunCanceled"
    assert cli_json("runs", "show", run_id)["run"]["status"] == "CANCELED"
    again = cli("runs", "cancel", run_id)
    assert again.exit_code == 1
    assert f"run {run_id} already finished CANCELED" in again.stderr
    other = cli_json("trigger", "cli-greet", "--payload", '{"name": "y"}')["run_id"]
    human = cli("runs", "cancel", other)
    assert human.exit_code == 0, human.output
    assert f"canceled {other}" in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trigger", "cli-greet", "--payload", "{nope"), "--payload is not valid JSON"),
        (("trigger", "cli-greet", "--payload", "@/no/such/file.json"), "cannot read payload file"),
        (("trigger", "cli-greet", "--payload", '{"nom": 1}'), "name"),
        (("trigger", "no-such-task"), "unknown task 'no-such-task'"),
        (("trigger", "cli-greet", "-m", "no_such_module_x"), "cannot import task module"),
        (("runs", "show", "run_missing"), "no run 'run_missing'"),
        (("runs", "replay", "run_missing"), "no run 'run_missing'"),
        (("runs", "replay", "run_missing", "--payload", "{nope"), "--payload is not valid JSON"),
        (("runs", "cancel", "run_missing"), "no run 'run_missing'"),
        (("runs", "list", "--table", "no-such-table"), "ResourceNotFoundException"),
        (("queues", "set-limit", "q"), "LIMIT or --clear"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(deployed: Deployed, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(deployed: Deployed):
    result = cli("runs", "show", "run_missing", "--debug")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "RunNotFoundError"


def test_trigger_needs_a_resume_queue(deployed: Deployed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DL_RESUME_QUEUE_URL")
    result = cli("trigger", "cli-greet", "--payload", '{"name": "x"}')
    assert result.exit_code == 1
    assert "no resume queue: pass --queue-url or set DL_RESUME_QUEUE_URL" in result.stderr


def test_runs_replay_starts_a_linked_run_from_a_step_or_with_a_new_payload(deployed: Deployed):
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}')["run_id"]
    deployed.handle(run_id)

    replayed = cli_json("runs", "replay", run_id, "--from-step", "shout")
    assert (replayed["task_id"], replayed["replay_of"]) == ("cli-greet", run_id)
    deployed.handle(replayed["run_id"])
    shown = cli_json("runs", "show", replayed["run_id"])
    assert (shown["run"]["replay_of"], shown["run"]["output"]) == (run_id, "hello ADA")

    fresh = cli_json("runs", "replay", run_id, "--payload", '{"name": "bo"}')
    deployed.handle(fresh["run_id"])
    assert cli_json("runs", "show", fresh["run_id"])["run"]["output"] == "hello BO"

    human = cli("runs", "replay", run_id)
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith(f"replaying {run_id} as run_")


def test_runs_replay_from_an_unknown_step_names_it_and_creates_nothing(deployed: Deployed):
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}')["run_id"]
    deployed.handle(run_id)
    result = cli("runs", "replay", run_id, "--from-step", "whisper")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line == f"error: run {run_id} recorded no step 'whisper' (its steps: shout)"
    assert [r["run_id"] for r in cli_json("runs", "list")] == [run_id]


def test_queues_list_pause_resume_and_set_limit(deployed: Deployed):
    queues = cli_json("queues", "list")
    names = [q["queue"] for q in queues]
    assert "cli-greetings" in names

    paused = cli_json("queues", "pause", "cli-greetings")
    assert paused["paused"] is True
    limited = cli_json("queues", "set-limit", "cli-greetings", "7")
    assert (limited["limit"], limited["limit_override"], limited["paused"]) == (7, 7, True)
    [shown] = [q for q in cli_json("queues", "list") if q["queue"] == "cli-greetings"]
    assert (shown["paused"], shown["limit"]) == (True, 7)
    resumed = cli_json("queues", "resume", "cli-greetings")
    assert resumed["paused"] is False
    cleared = cli_json("queues", "set-limit", "cli-greetings", "--clear")
    assert cleared["limit_override"] is None

    human = cli("queues", "list", "--queue", "other")
    assert human.exit_code == 0, human.output
    assert "other" in human.stdout


def test_replay_check_passes_then_catches_a_changed_task(deployed: Deployed, tmp_path, monkeypatch):
    run_id = cli_json("trigger", "cli-slow", "--payload", '{"name": "x"}')["run_id"]
    deployed.handle(run_id)  # the run records "shout", then suspends for an hour
    report = cli_json("replay-check")
    assert (report["ok"], report["checked"]) == (True, 1)
    assert cli("replay-check").exit_code == 0

    # The next deploy renames the step the suspended run already recorded.
    (tmp_path / "cli_tasks_v2.py").write_text(
        "from durable_lambda import step, task, wait\n"
        "@step(name='whisper')\n"
        "def whisper(name: str) -> str:\n"
        "    return name.lower()\n"
        "@task(id='cli-slow')\n"
        "async def slow(payload: dict) -> str:\n"
        "    await whisper(payload['name'])\n"
        "    await wait.for_(hours=1)\n"
        "    return 'x'\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(default_registry, "_tasks", {})
    monkeypatch.delitem(sys.modules, "cli_tasks_v2", raising=False)
    result = cli("replay-check", "-m", "cli_tasks_v2", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    [broken] = report["runs"]
    assert (broken["run_id"], broken["task_id"], broken["verdict"]) == (
        run_id,
        "cli-slow",
        "non_deterministic",
    )
    assert (broken["scope"], broken["position"]) == ("", 0)
    assert (broken["recorded"], broken["now"]) == ("shout#0", "whisper#0")
    human = cli("replay-check", "-m", "cli_tasks_v2")
    assert human.exit_code == 1
    assert "recorded 'shout#0', now 'whisper#0'" in human.stdout
    monkeypatch.delitem(sys.modules, "cli_tasks_v2", raising=False)


def test_the_console_script_names_the_cli_entry_point():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["durable-lambda"].partition(":")
    entry = getattr(importlib.import_module(module), attr)
    assert entry is main
    done = subprocess.run(
        [sys.executable, "-m", "durable_lambda.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    for name in ("trigger", "runs", "queues", "replay-check"):
        assert name in done.stdout
