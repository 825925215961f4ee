"""``Task.trigger`` reaches one memoised client per settings, through one seam."""

from __future__ import annotations

import pytest

from durable_lambda import RunQuery, services
from durable_lambda.adapters import aws
from durable_lambda.adapters.memory import MemoryPorts, memory_ports
from durable_lambda.settings import ENV_TABLE, Settings
from durable_lambda.task import TaskRegistry, set_default_trigger, task


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings of each backend the default client builds (in memory, not on AWS)."""
    calls: list[Settings] = []

    def fake_aws_ports(settings: Settings, session: object = None) -> MemoryPorts:
        calls.append(settings)
        return memory_ports(settings)

    monkeypatch.setattr(aws, "aws_ports", fake_aws_ports)
    return calls


def test_task_trigger_builds_the_default_client_once(built, monkeypatch):
    monkeypatch.setenv(ENV_TABLE, "orders-table")
    registry = TaskRegistry()

    @task(id="memo-once", registry=registry)
    async def once(payload: int) -> int:
        return payload

    first = once.trigger(1)
    second = once.trigger(2, tags=["b"])
    assert built == [Settings.from_env()]
    runs = services.default_client().list_runs(RunQuery(task_id="memo-once"))
    assert {run.run_id for run in runs} == {first.run_id, second.run_id}


def test_different_settings_get_different_clients(built):
    a = Settings(table_name="table-a")
    b = Settings(table_name="table-b")
    client_a = services.default_client(a)
    client_b = services.default_client(b)
    assert client_b is not client_a
    assert services.default_client(a) is client_a
    assert services.default_client(b) is client_b
    assert built == [a, b]


def test_a_changed_environment_builds_a_new_client(built, monkeypatch):
    monkeypatch.setenv(ENV_TABLE, "first-table")
    first = services.default_client()
    monkeypatch.setenv(ENV_TABLE, "second-table")
    second = services.default_client()
    assert second is not first
    assert [settings.table_name for settings in built] == ["first-table", "second-table"]


def test_reset_forgets_the_default_clients(built):
    settings = Settings(table_name="table-r")
    before = services.default_client(settings)
    services.reset_default_client()
    assert services.default_client(settings) is not before
    assert built == [settings, settings]


def test_the_seam_sends_task_trigger_to_the_installed_client(runner, registry):
    @task(id="seam", registry=registry)
    async def seam(payload: int) -> int:
        return payload * 2

    previous = set_default_trigger(lambda: runner.client)
    try:
        handle = seam.trigger(21)
    finally:
        set_default_trigger(previous)
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.output == 42
