"""``durable-lambda dev`` as a user runs it: a subprocess, HTTP requests, a file edit, Ctrl-C.

Waits are on recorded facts (events on stdout, run statuses over the API),
never on elapsed time; the generous bounds only stop a broken run hanging.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_lambda.cli import scaffold
from durable_lambda.local.moto_server import MotoServer

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.moto]

ROOT = Path(__file__).resolve().parents[2]
#: Only stops a broken test from hanging; no assertion depends on it.
PATIENCE = 180.0

TASKS = """
from durable_lambda import step, task


@step
def double(x: int) -> int:
    return 2 * x


@task(id="dev-hello")
async def hello(payload: dict, ctx) -> dict:
    return {{"value": await double(payload["x"]), "version": {version}}}
"""


class Dev:
    """A running ``durable-lambda dev --json`` and the events it printed."""

    def __init__(self, cwd: Path, *args: str, sigint_ignored: bool = False) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in list(env):
            if name.startswith(("AWS_ENDPOINT_URL", "DL_")):
                del env[name]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "durable_lambda.cli", "dev", "--port", "0", "--json", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As `dev &` in a shell script starts it: SIGINT ignored from birth.
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # noqa: PLW1509
            if sigint_ignored
            else None,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.next_event("ready")
        self.url: str = self.ready["api_url"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def next_event(self, kind: str) -> dict[str, Any]:
        while True:
            try:
                event = self.events.get(timeout=PATIENCE)
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"no {kind!r} event; stderr: {self.process.communicate()[1]}")
            self.seen.append(event)
            if event["event"] == kind:
                return event

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 server
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.loads(response.read())

    def trigger(self, payload: Any) -> str:
        return str(self.request("POST", "/tasks/dev-hello/runs", {"payload": payload})["run_id"])

    def finished(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            run = self.request("GET", f"/runs/{run_id}")
            if run["status"] in {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}:
                return dict(run)
            time.sleep(0.2)
        pytest.fail(f"run {run_id} did not finish")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(url: str) -> bool:
    """Nothing listens there: a server could bind it (TIME_WAIT of closed requests aside)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "devtasks.py").write_text(TASKS.format(version=1))
    return tmp_path


@pytest.fixture
def dev(project: Path) -> Iterator[Dev]:
    server = Dev(project, "--tasks", "devtasks", "--timeout", "10")
    yield server
    server.stop()


def test_dev_serves_a_run_over_http_and_ctrl_c_leaves_no_process_or_port(dev: Dev):
    run_id = dev.trigger({"x": 21})
    run = dev.finished(run_id)
    assert run["status"] == "COMPLETED"
    assert run["output"]["value"] == {"value": 42, "version": 1}
    # The live stream reported the run's end.
    streamed = dev.next_event("run")
    while streamed["status"] != "COMPLETED":
        streamed = dev.next_event("run")
    assert streamed["run_id"] == run_id
    assert streamed["invocations"] == 1
    children = descendants(dev.process.pid)
    assert len(children) >= 2  # at least the api and worker environments

    assert dev.stop() == 0

    assert dev.next_event("stopped") == {"event": "stopped"}
    assert [pid for pid in children if alive(pid)] == []
    assert port_free(dev.url)
    assert port_free(dev.ready["moto_url"])


def test_dev_ships_function_logs_to_cloudwatch_where_runs_logs_reads_them(dev: Dev):
    from typer.testing import CliRunner  # noqa: PLC0415

    from durable_lambda.cli import app  # noqa: PLC0415

    run_id = dev.trigger({"x": 2})
    assert dev.finished(run_id)["status"] == "COMPLETED"
    worker = "/aws/lambda/durable-lambda-dev-worker"
    assert worker in dev.ready["log_groups"]
    args = ["runs", "logs", run_id, "--endpoint-url", dev.ready["moto_url"], "--log-group", worker]
    env = {"AWS_ACCESS_KEY_ID": "dev", "AWS_SECRET_ACCESS_KEY": "dev", "AWS_REGION": "us-east-1"}
    deadline = time.monotonic() + PATIENCE
    lines: list[dict[str, Any]] = []
    while not lines and time.monotonic() < deadline:  # shipped every poll interval
        result = CliRunner().invoke(app, [*args, "--json"], env=env)
        assert result.exit_code in {0, 1}, result.output
        lines = json.loads(result.stdout) if result.exit_code == 0 else []
        time.sleep(0.2)
    assert lines, "no worker line about the run reached CloudWatch Logs"
    assert all(run_id in line["message"] for line in lines)
    assert any((line["record"] or {}).get("run_id") == run_id for line in lines)


def test_dev_reloads_a_changed_task_module_for_new_runs(dev: Dev, project: Path):
    first = dev.finished(dev.trigger({"x": 1}))
    module = project / "devtasks.py"
    before = module.stat().st_mtime_ns
    module.write_text(TASKS.format(version=2))
    # Same size, and maybe the same mtime on a coarse clock: make the edit visible.
    os.utime(module, ns=(before + 2_000_000_000, before + 2_000_000_000))

    reloaded = dev.next_event("reloaded")
    second = dev.finished(dev.trigger({"x": 1}))

    assert reloaded["files"] == [str(module)]
    assert reloaded["error"] is None
    assert first["output"]["value"] == {"value": 2, "version": 1}
    assert second["output"]["value"] == {"value": 2, "version": 2}


def test_persist_keeps_runs_across_a_restart(project: Path):
    state = project / "state" / "dev.json"
    first = Dev(project, "--tasks", "devtasks", "--persist", str(state))
    run_id = first.trigger({"x": 5})
    assert first.finished(run_id)["status"] == "COMPLETED"
    assert first.stop() == 0
    saved = first.next_event("saved")

    again = Dev(project, "--tasks", "devtasks", "--persist", str(state))
    try:
        restored = again.seen[0] if again.seen[0]["event"] == "restored" else None
        run = again.request("GET", f"/runs/{run_id}")
    finally:
        again.stop()
    fresh = Dev(project, "--tasks", "devtasks")
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            fresh.request("GET", f"/runs/{run_id}")
    finally:
        fresh.stop()

    assert saved["items"] > 0
    assert restored == {"event": "restored", "items": saved["items"], "objects": saved["objects"]}
    assert run["status"] == "COMPLETED"
    assert run["output"]["value"] == {"value": 10, "version": 1}
    assert missing.value.code == 404  # without --persist a restart starts empty


def test_a_scaffolded_project_runs_on_dev_as_its_readme_says(tmp_path: Path):
    project = tmp_path / "shop"
    scaffold.init(project)
    body = json.loads((project / "events" / "trigger_greet.json").read_text())

    server = Dev(project, "--src", "src", "--tasks", "tasks")
    try:
        run_id = str(server.request("POST", "/tasks/greet/runs", body)["run_id"])
        run = server.finished(run_id)
    finally:
        server.stop()

    assert run["status"] == "COMPLETED"
    assert run["output"]["value"]["message"] == "Hello, Ada!"


def test_endpoint_url_puts_sqs_s3_and_logs_elsewhere_while_dynamodb_stays_embedded(project: Path):
    boto3 = pytest.importorskip("boto3")
    with MotoServer() as outside:
        url = outside.endpoint_url
        server = Dev(project, "--tasks", "devtasks", "--endpoint-url", url)
        try:
            run = server.finished(server.trigger({"x": 3}))
        finally:
            server.stop()
        sqs = boto3.client("sqs", **_client_options(outside))
        queues = sqs.list_queues().get("QueueUrls", [])

    endpoints = server.ready["endpoints"]
    assert {endpoints[s] for s in ("sqs", "s3", "logs")} == {url}
    assert endpoints["dynamodb"] == server.ready["moto_url"] != url
    assert any(url.endswith("durable-lambda-dev-resume") for url in queues)
    assert run["status"] == "COMPLETED"


def _client_options(server: MotoServer) -> dict[str, str]:
    return {
        "endpoint_url": server.endpoint_url,
        "region_name": server.region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def test_sigint_stops_dev_even_when_started_with_sigint_ignored(project: Path):
    server = Dev(project, "--tasks", "devtasks", sigint_ignored=True)

    assert server.stop() == 0

    assert server.next_event("stopped") == {"event": "stopped"}
