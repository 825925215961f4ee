"""``tasks list``, ``trigger --batch`` and the ``--wait`` progress line, on moto."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from test_cli import Deployed, cli, cli_json, deployed  # noqa: F401 - the fixture
from test_cli_tokens import work_off
from typer.testing import CliRunner

from durable_lambda.catalog import publish
from durable_lambda.cli import app
from durable_lambda.cli.trigger import Snapshot, _direct_snapshot, follow
from durable_lambda.engine.state import RunStatus
from durable_lambda.task import TaskRegistry, task

pytestmark = pytest.mark.moto


def test_tasks_list_shows_the_catalog_and_the_loaded_modules(deployed: Deployed):  # noqa: F811
    # A task only the deployed functions import: catalogued, not in this process.
    elsewhere = TaskRegistry()

    @task(id="cli-deployed-only", registry=elsewhere, cron="0 * * * *")
    async def deployed_only(payload: int) -> int:
        return payload

    publish(elsewhere, deployed.services().client.catalog)
    listed = {t["task_id"]: t for t in cli_json("tasks", "list")}
    assert set(listed) >= {"cli-greet", "cli-slow", "cli-deployed-only"}
    greet = listed["cli-greet"]
    assert (greet["queue"]["name"], greet["queue"]["concurrency_limit"]) == ("cli-greetings", 3)
    assert greet["retry"]["max_attempts"] >= 1
    assert greet["payload_summary"] == "name*"
    assert greet["payload_schema"]["required"] == ["name"]
    assert (
        listed["cli-deployed-only"]["cron"],
        listed["cli-deployed-only"]["payload_summary"],
    ) == (
        "0 * * * *",
        "integer",
    )
    human = CliRunner().invoke(app, ["tasks", "list"], env={"COLUMNS": "200"})  # no wrapping
    assert human.exit_code == 0, human.output
    assert "cli-greetings" in human.stdout
    assert "0 * * * *" in human.stdout


def test_trigger_batch_creates_one_run_per_line_and_names_refused_lines(
    deployed: Deployed,  # noqa: F811
    tmp_path,
):
    lines = tmp_path / "names.jsonl"
    lines.write_text('{"name": "a"}\n\n{"name": "b"}\n{"nom": 1}\n')
    result = cli("trigger", "cli-greet", "--batch", f"@{lines}", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert [r["index"] for r in out["results"]] == [0, 1, 2]
    made = [r["run_id"] for r in out["results"] if r["run_id"]]
    assert len(made) == 2
    assert out["results"][2]["run_id"] is None
    assert "name" in out["results"][2]["error"]
    assert result.stderr.strip().endswith("error: 1 of 3 item(s) refused")
    listed = cli_json("runs", "list", "--task", "cli-greet")
    assert sorted(r["run_id"] for r in listed) == sorted(made)
    assert sorted(r["payload"]["name"] for r in listed) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no payload"),
        ('{"name": "a"}\n{oops\n', "line 2 is not valid JSON"),
    ],
)
def test_a_bad_batch_file_is_one_line(deployed: Deployed, tmp_path, text, message):  # noqa: F811
    lines = tmp_path / "bad.jsonl"
    lines.write_text(text)
    result = cli("trigger", "cli-greet", "--batch", f"@{lines}")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert message in line
    assert cli_json("runs", "list") == []


def test_wait_progress_shows_status_and_steps_done(deployed: Deployed):  # noqa: F811
    run_id = cli_json("trigger", "cli-greet", "--payload", '{"name": "ada"}')["run_id"]
    services = deployed.services()
    assert _direct_snapshot(services, run_id) == Snapshot(run_id, RunStatus.QUEUED, 0, 0)
    work_off(deployed)
    assert _direct_snapshot(services, run_id) == Snapshot(run_id, RunStatus.COMPLETED, 1, 1)

    seen = iter(
        [
            Snapshot(run_id, RunStatus.RUNNING, 0, 1),
            Snapshot(run_id, RunStatus.COMPLETED, 1, 1),
        ]
    )
    console = Console(record=True, force_terminal=True, width=200)
    last = follow(lambda: next(seen), timeout=60, poll=0, console=console)
    assert last.status is RunStatus.COMPLETED
    assert f"{run_id} COMPLETED · 1 step(s) done · 1 invocation(s)" in console.export_text()
