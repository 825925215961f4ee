from __future__ import annotations

import time
from pathlib import Path

import pytest

from durable_lambda.engine.state import RunStatus
from durable_lambda.local.stack import EmulatedStack, settings_env
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

HERE = Path(__file__).parent


def test_settings_survive_the_trip_through_the_environment():
    settings = Settings(
        table_name="t",
        resume_queue_url="http://q",
        dlq_url="http://d",
        inline_limit=1000,
        short_wait_seconds=0.25,
        safety_margin_fraction=0.2,
        task_modules=("a.b", "c"),
        function_timeout=12.5,
        api_base_url="http://127.0.0.1:8123/v1",
    )

    assert Settings.from_env(settings_env(settings)) == settings


def test_durable_run_suspends_and_resumes_through_sqs(tmp_path):
    stack = EmulatedStack(
        Settings(short_wait_seconds=0.5),
        task_modules=["emu_tasks"],
        timeout=5.0,
        pythonpath=[str(HERE)],
        scheduler_interval=1.0,
        log_dir=tmp_path,
    )
    with stack:
        handle = stack.trigger("emu-hello", {"name": "ada"})
        run = stack.wait_for(handle.run_id, timeout=20)
        result = stack.client.result(handle.run_id)
        # The run is COMPLETED once its last invocation checkpointed; the poller
        # deletes that invocation's message only after the invocation returns.
        deadline = time.monotonic() + 20
        while stack.poller.stats.deleted < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker, poller, ticker = stack.worker.stats, stack.poller.stats, stack.ticker.stats

    assert run.status is RunStatus.COMPLETED
    assert result.output["name"] == "ada"
    assert result.output["before"]["pid"] == result.output["after"]["pid"]  # warm resume
    assert (worker.invocations, worker.cold_starts, worker.warm_starts) == (2, 1, 1)
    assert (poller.messages, poller.deleted) == (2, 2)
    assert ticker.ticks >= 1
    assert ticker.errors == 0
    assert "resume message processed" in (tmp_path / "worker.log").read_text()
