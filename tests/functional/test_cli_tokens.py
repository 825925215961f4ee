"""``durable-lambda tokens``: complete, fail, heartbeat and show wait tokens on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_cli import Deployed, cli, cli_json, deployed  # noqa: F401 - the fixture

from durable_lambda.engine.journal import EntryKind
from durable_lambda.messages import decode_message
from durable_lambda.worker import Invocation

pytestmark = pytest.mark.moto


@pytest.fixture
def tasks(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:  # noqa: F811
    monkeypatch.setenv("DL_TASK_MODULES", "cli_token_tasks")
    return deployed


def work_off(target: Deployed) -> None:
    """The deployed worker: handle every visible resume message, then return."""
    services = target.services()
    sqs = target.session.client("sqs")
    url = target.settings.resume_queue_url
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages"):
        for message in got:
            invocation = Invocation("cli-test", lambda: 900.0, 900.0)
            services.worker.handle(decode_message(message["Body"]), invocation)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def waiting_run(target: Deployed) -> tuple[str, str]:
    """A run of ``cli-approve`` waiting on its token: (run id, token id)."""
    run_id = cli_json("trigger", "cli-approve")["run_id"]
    work_off(target)
    store = target.services().worker.store
    (token,) = [e for e in store.load_journal(run_id) if e.kind is EntryKind.TOKEN]
    return run_id, json.loads(token.result)["id"]


def output(target: Deployed, run_id: str) -> Any:
    run = target.services().client.get_run(run_id)
    assert run.status.value == "COMPLETED", run.status
    return json.loads(run.output)


def test_complete_wakes_the_run_with_the_data_and_a_second_is_refused(tasks: Deployed):
    run_id, token_id = waiting_run(tasks)
    shown = cli_json("tokens", "show", token_id)
    assert (shown["status"], shown["run_id"], shown["name"]) == ("PENDING", run_id, "approval")
    assert "secret" not in json.dumps(shown)
    done = cli_json("tokens", "complete", token_id, "--data", '{"approved": true}')
    assert (done["status"], done["run_id"]) == ("COMPLETED", run_id)
    work_off(tasks)
    assert output(tasks, run_id) == {"data": {"approved": True}}
    again = cli("tokens", "complete", token_id, "--data", "1")
    assert again.exit_code == 1
    assert "already COMPLETED" in again.stderr
    human = cli("tokens", "show", token_id)
    assert human.exit_code == 0, human.output
    assert f"token {token_id} is: COMPLETED" in human.stdout


def test_complete_reads_the_data_from_a_file(tasks: Deployed, tmp_path):
    run_id, token_id = waiting_run(tasks)
    (tmp_path / "answer.json").write_text('{"by": "ops"}')
    result = cli("tokens", "complete", token_id, "--data", f"@{tmp_path / 'answer.json'}")
    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.stdout
    work_off(tasks)
    assert output(tasks, run_id) == {"data": {"by": "ops"}}


@pytest.mark.parametrize(
    "how",
    [
        ["--type", "Rejected", "--message", "not this week"],
        ["--data", '{"type": "Rejected", "message": "not this week"}'],
    ],
)
def test_fail_raises_token_failed_error_in_the_run(tasks: Deployed, how: list[str]):
    run_id, token_id = waiting_run(tasks)
    failed = cli_json("tokens", "fail", token_id, *how)
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"type": "Rejected", "message": "not this week"}
    work_off(tasks)
    assert output(tasks, run_id) == {"failed": ["Rejected", "not this week"]}


def test_heartbeat_records_the_beat(tasks: Deployed):
    _, token_id = waiting_run(tasks)
    beat = cli_json("tokens", "heartbeat", token_id)
    assert beat["status"] == "PENDING"
    stored = tasks.services().client.retrieve_token(token_id)
    assert stored.last_heartbeat_at is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "complete", "tok_nobody", "--data", "1"], "no wait token 'tok_nobody'"),
        (["tokens", "show", "tok_nobody"], "no wait token 'tok_nobody'"),
        (["tokens", "complete", "tok_x", "--data", "{bad"], "--data is not valid JSON"),
        (["tokens", "fail", "tok_x"], "fail needs --type"),
        (["tokens", "fail", "tok_x", "--data", "[1]"], "must be a JSON object"),
        (["tokens", "fail", "tok_x", "--type", "A", "--data", "{}"], "not both"),
    ],
)
def test_token_errors_are_one_line_and_exit_non_zero(
    tasks: Deployed, args: list[str], message: str
):
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
