"""Crashes at the exact moments a queue hands a run on: each run still starts, no unit leaks.

An in-process worker, admission and scheduler on a moto server (the same
wiring as ``lambda_entry._build``), sharing a ``SkipClock``; a crash is a
``BaseException`` raised from the port call the process dies in, so nothing
after it runs and no handler sees it, as with a SIGKILL.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from ledger import read_ledger
from queue_helpers import wait_until
from queue_tasks import RATED, SINGLE

from durable_lambda.engine.state import RunStatus
from durable_lambda.worker import Report

pytestmark = [pytest.mark.moto]


class _ProcessKilled(BaseException):
    """Stands for a SIGKILL: nothing after it runs, no handler sees it."""


class _KilledOnFirstSend:
    """A resume queue whose process dies as it sends its first message."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.killed = False

    def send(self, message: Any, delay_seconds: int = 0) -> None:
        if not self.killed:
            self.killed = True
            raise _ProcessKilled
        self.queue.send(message, delay_seconds)


class _KilledOnRelease:
    """A slot store whose process dies as it releases a unit."""

    def __init__(self, slots: Any) -> None:
        self.slots = slots

    def release(self, *_: object) -> None:
        raise _ProcessKilled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.slots, name)


def test_a_worker_killed_as_it_hands_its_unit_on_strands_no_parked_run(
    in_process, ledger, tmp_path
):
    gate = tmp_path / "gate"
    holder = in_process.client.trigger("q-single", {"gate": str(gate), "label": "holder"})
    (message,) = in_process.receive()
    outcome: list[BaseException | Report] = []

    def run_holder() -> None:
        try:
            outcome.append(in_process.invoke(message["Body"]))
        except BaseException as exc:  # noqa: BLE001 - the simulated kill, examined below
            outcome.append(exc)

    thread = threading.Thread(target=run_holder)
    thread.start()
    wait_until(lambda: read_ledger(ledger), timeout=10, what="the holder's step to start")
    parked = in_process.client.trigger("q-single", {"label": "parked"})
    assert [r.action for r in in_process.deliver(wait_seconds=1)] == ["parked"]

    # The holder finishes: final checkpoint, release, grant to the parked run, and
    # its process dies as it sends the parked run's resume message.
    in_process.admission.queue = _KilledOnFirstSend(in_process.ports.queue)
    gate.touch()
    thread.join(timeout=30)
    in_process.delete(message)
    assert isinstance(outcome[0], _ProcessKilled)
    assert in_process.client.get_run(holder.run_id).status is RunStatus.COMPLETED
    granted = in_process.client.get_run(parked.run_id)
    assert granted.status is RunStatus.QUEUED  # granted, but its message was never sent
    assert in_process.client.queue_state(SINGLE.name).holders[0].run_id == parked.run_id

    in_process.recover()

    assert in_process.client.get_run(parked.run_id).status is RunStatus.COMPLETED
    state = in_process.client.queue_state(SINGLE.name)
    assert (state.count, state.waiting) == (0, 0)  # the reserved unit was used, then released


def test_a_worker_killed_as_it_delays_a_rate_limited_run_strands_no_run(in_process):
    limit = RATED.rate_limit
    assert limit is not None
    first = [in_process.client.trigger("q-rated", {"label": f"r{i}"}) for i in range(limit.limit)]
    reports = in_process.deliver(wait_seconds=1)
    assert [r.action for r in reports] == ["executed"] * limit.limit, reports
    late = in_process.client.trigger("q-rated", {"label": "late"})
    in_process.admission.queue = _KilledOnFirstSend(in_process.ports.queue)
    (message,) = in_process.receive()
    with pytest.raises(_ProcessKilled):
        in_process.invoke(message["Body"])  # over the limit: delayed, and dies sending
    in_process.delete(message)  # its epoch is stale now; a redelivery would be dropped
    assert in_process.client.get_run(late.run_id).status is RunStatus.QUEUED

    in_process.recover()

    assert all(
        in_process.client.get_run(h.run_id).status is RunStatus.COMPLETED for h in [*first, late]
    )


def test_a_finished_run_gives_its_unit_back_in_its_final_checkpoint(in_process):
    # The release is part of the checkpoint's transaction: no crash can fall
    # between the two and leave a finished run holding a unit of an idle queue.
    in_process.admission.slots = _KilledOnRelease(in_process.ports.flow)  # never called now
    handle = in_process.client.trigger("q-single", {"label": "only"})
    in_process.deliver(wait_seconds=1)
    assert in_process.client.get_run(handle.run_id).status is RunStatus.COMPLETED
    state = in_process.client.queue_state(SINGLE.name)
    assert state.count == 0
    assert state.holders == ()
