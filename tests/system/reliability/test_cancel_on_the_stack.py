"""A running run is canceled at its next step boundary, on the emulated stack."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ledger import read_ledger
from stack_waits import wait_all
from system_fixtures import StackTasks

from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings


@pytest.fixture
def stack_tasks() -> StackTasks:
    return StackTasks(("cancel_tasks",), Path(__file__).parent)


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout:g} s")
        time.sleep(0.05)


@pytest.mark.emulator
@pytest.mark.slow
def test_a_running_run_stops_at_its_next_step_boundary(make_stack, ledger: Path, tmp_path: Path):
    stack = make_stack(Settings(), timeout=300.0)
    gate = tmp_path / "gate"
    run_id = stack.trigger("cancel-gated", {"gate": str(gate)}).run_id
    _wait_for(Path(f"{gate}.entered"), timeout=120)  # the first step's body is running

    requested = stack.client.cancel_run(run_id)
    gate.write_text("")  # let the body finish: its record meets the cancel
    (run,) = wait_all(stack, [run_id], timeout=120)

    assert (requested.status, requested.cancel_requested) == (RunStatus.RUNNING, True)
    assert (run.status, run.cancel_requested, run.output) == (RunStatus.CANCELED, False, None)
    assert run.error is not None
    assert run.error.type == "RunCanceled"
    steps = [(line["step"], line["event"]) for line in read_ledger(ledger)]
    assert steps == [("gated#0", "start"), ("gated#0", "end")]  # the next step never ran
    assert [e.name for e in stack.client.store.load_journal(run_id)] == ["gated"]
    kinds = [e.kind for e in stack.client.store.list_events(run_id)]
    assert kinds.index(EventKind.CANCEL_REQUESTED) < kinds.index(EventKind.CANCELED)
    assert run.invocations == 1
