"""Runs survive workers SIGKILLed at random moments; a step body re-runs only after a kill."""

from __future__ import annotations

import datetime as dt

import pytest
from ledger import read_ledger
from ledger_checks import executions, journal_problems, step_entries, unexplained_reexecutions
from ledger_tasks import value_of
from stack_waits import wait_all

from durable_lambda.engine.state import RunStatus
from durable_lambda.local import Chaos
from durable_lambda.scheduler import STRANDED_AFTER
from durable_lambda.settings import Settings

RUNS = 20
STEPS = 8


@pytest.mark.emulator
@pytest.mark.slow
def test_twenty_runs_complete_while_workers_are_killed_at_random(make_stack, ledger):
    stack = make_stack(
        # The sweep for lost resume messages, scaled to 3 s invocations and a
        # 1 s tick: comfortably above a message's longest honest delay here
        # (visibility timeout 6 s, lease expiry about 8 s after it was taken).
        Settings(short_wait_seconds=0, stranded_after_seconds=15),
        timeout=3.0,
        reserved_concurrency=3,
        visibility_timeout=6,  # a killed batch comes back soon
        max_receive_count=10,  # a message dead-letters after crashing 10 invocations, not 3
        scheduler_interval=1.0,  # recovers runs whose holder died once their lease expires
        batch_size=2,
        chaos=Chaos(probability=0.3, seed=20261),
    )
    payload = {"steps": STEPS, "seconds": 0.2, "wait_after": STEPS // 2, "wait_seconds": 1}
    handles = [stack.trigger("ledger-steps", {**payload, "seed": f"run-{i}"}) for i in range(RUNS)]
    # A kill between a checkpoint and its resume message strands a run until the
    # scheduler's sweep sends it again (15 s overdue here). A run overdue by far
    # more than the sweep, ticks and redeliveries take on a busy machine was
    # forgotten; the bounds are liveness, not speed.
    runs = wait_all(stack, [h.run_id for h in handles], timeout=600, stranded_after=240)
    worker = stack.worker.stats
    lines = read_ledger(ledger)
    found = executions(lines)

    assert [run.status for run in runs] == [RunStatus.COMPLETED] * RUNS
    for index, handle in enumerate(handles):
        result = stack.client.result(handle.run_id)
        assert result is not None
        assert result.output == [value_of(f"run-{index}", i) for i in range(STEPS)]
        journal = stack.client.store.load_journal(handle.run_id)
        assert journal_problems(journal) == [], handle.run_id
        steps = step_entries(journal)
        assert [entry.key for entry in steps] == [f"work#{i}" for i in range(STEPS)]
        for entry in steps:
            # The recorded result is the one of the body's last execution.
            final = found[handle.run_id, entry.key][-1]
            assert entry.result is not None
            assert f'"pid":{final.pid}' in entry.result.replace(" ", "")
    assert worker.kills >= 3, "the chaos seed should have killed a few workers"
    assert unexplained_reexecutions(lines) == []
    reran = {e.pid for runs in found.values() for e in runs[:-1]}
    assert len(reran) <= worker.kills  # every process whose step re-ran was one of the kills


class _ProcessKilled(BaseException):
    """Stands for a SIGKILL: nothing after it runs, no handler sees it."""


class _KilledOnFirstSend:
    """The resume queue of a worker process that is killed as it sends its first message."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.killed = False

    def send(self, message, delay_seconds: int = 0) -> None:
        if not self.killed:
            self.killed = True
            raise _ProcessKilled
        self.queue.send(message, delay_seconds)


@pytest.mark.moto
def test_a_worker_killed_between_checkpoint_and_resume_message_strands_no_run(in_process, ledger):
    in_process.worker.queue = _KilledOnFirstSend(in_process.ports.queue)
    handle = in_process.client.trigger("ledger-wait", {"seconds": 5})
    with pytest.raises(_ProcessKilled):
        in_process.deliver()  # step, wait: checkpoint written, then the process dies
    suspended = in_process.client.get_run(handle.run_id)
    assert suspended.status is RunStatus.SUSPENDED
    assert suspended.epoch == 1

    # SQS redelivers the trigger message: its epoch has passed, so it is dropped.
    in_process.sqs.purge_queue(QueueUrl=in_process.settings.resume_queue_url)
    assert in_process.invoke(f'{{"run_id":"{handle.run_id}","epoch":0}}').action == "stale"
    # No message is on its way; the scheduler's sweep finds the overdue run.
    assert in_process.scheduler.tick().lost_messages_resent == 0  # not overdue yet
    assert suspended.wake_at is not None
    in_process.clock.advance_to(suspended.wake_at + STRANDED_AFTER + dt.timedelta(seconds=1))
    assert in_process.scheduler.tick().lost_messages_resent == 1
    (report,) = in_process.deliver(wait_seconds=1)

    assert report.action == "executed"
    assert in_process.client.get_run(handle.run_id).status is RunStatus.COMPLETED
    assert len(executions(read_ledger(ledger))[handle.run_id, "stamp#0"]) == 1
