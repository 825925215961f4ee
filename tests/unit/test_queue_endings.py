"""Every way a run ends gives its concurrency unit back; a dead letter fails only its own run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from durable_lambda import Queue, RateLimit, task, wait
from durable_lambda.engine.records import EventKind, ResumeMessage
from durable_lambda.engine.slots import SlotKey
from durable_lambda.engine.state import RunStatus
from durable_lambda.messages import encode_message
from durable_lambda.scheduler import Scheduler
from durable_lambda.settings import Settings
from durable_lambda.testing import LocalRunner

FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
KEY = SlotKey("single")


@dataclass(frozen=True)
class _Letter:
    body: str
    receipt_handle: str
    receive_count: int = 5


@dataclass
class _DeadLetters:
    """A DLQ holding the given messages, read once."""

    letters: list[_Letter]
    deleted: list[str] = field(default_factory=list)

    def receive(self, max_messages: int = 10) -> list[_Letter]:
        out, self.letters = self.letters[:max_messages], self.letters[max_messages:]
        return out

    def delete(self, receipt_handle: str) -> None:
        self.deleted.append(receipt_handle)


def _dead_letters(*messages: ResumeMessage) -> _DeadLetters:
    return _DeadLetters([_Letter(encode_message(m), f"h{i}") for i, m in enumerate(messages)])


def _scheduler(runner: LocalRunner, letters: _DeadLetters) -> Scheduler:
    return Scheduler(
        store=runner.store,
        queue=runner.queue,
        clock=runner.clock,
        dead_letters=letters,
        admission=runner.admission,
    )


def _status(runner: LocalRunner, run_id: str) -> RunStatus:
    return runner.client.get_run(run_id).status


def test_a_parked_run_past_its_ttl_expires_while_the_queue_stays_full(runner, one_slot):
    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    late = runner.trigger(one_slot, "late", ttl=60).run_id
    runner.drain()
    assert _status(runner, late) is RunStatus.EXPIRED
    assert EventKind.EXPIRED in {e.kind for e in runner.timeline(late)}
    assert runner.client.get_run(late).started_at is None
    assert runner.flow.state(KEY).holders[0].run_id == "someone-else"


def test_a_parked_run_past_its_ttl_expires_while_the_queue_stays_paused(runner, one_slot):
    runner.client.pause_queue("single")
    late = runner.trigger(one_slot, "late", ttl=60).run_id
    runner.drain()
    assert _status(runner, late) is RunStatus.EXPIRED
    assert runner.flow.state(KEY).count == 0


def test_a_run_granted_a_unit_after_its_ttl_expires_and_hands_the_unit_on(runner, one_slot):
    runner.flow.acquire(KEY, "someone-else", FAR, 1)
    late = runner.trigger(one_slot, "late", ttl=60).run_id
    runner.clock.advance(0.01)
    after = runner.trigger(one_slot, "after").run_id
    assert runner.step_once()
    assert runner.step_once()  # both parked
    assert [_status(runner, r) for r in (late, after)] == [RunStatus.WAITING_FOR_SLOT] * 2
    runner.clock.advance(59)
    runner.admission.leave(KEY, "someone-else")  # hands the unit to `late`...
    assert runner.flow.state(KEY).holders[0].run_id == late
    runner.clock.advance(2)  # ...whose message arrives after its ttl
    runner.drain()
    assert _status(runner, late) is RunStatus.EXPIRED
    assert _status(runner, after) is RunStatus.COMPLETED
    assert runner.flow.state(KEY).count == 0


def test_a_run_failed_for_a_too_large_output_gives_its_unit_back(registry, one_slot):
    runner = LocalRunner(
        registry=registry, settings=Settings(inline_limit=1000, max_value_bytes=2000)
    )
    big = runner.trigger(one_slot, "big").run_id
    small = runner.trigger(one_slot, "small").run_id
    runner.drain()
    failed = runner.client.get_run(big)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert "PayloadTooLarge" in failed.error.type
    assert _status(runner, small) is RunStatus.COMPLETED
    assert runner.flow.state(KEY).count == 0


def test_a_dead_lettered_run_gives_its_unit_to_the_next_parked_run(runner, one_slot):
    poisoned = runner.trigger(one_slot, "poisoned").run_id
    runner.queue.receive(runner.clock.now())  # its message will end in the DLQ
    runner.flow.acquire(KEY, poisoned, FAR, 1)  # it was granted the unit
    parked = runner.trigger(one_slot, "parked").run_id
    runner.drain()
    assert _status(runner, parked) is RunStatus.WAITING_FOR_SLOT
    letters = _dead_letters(ResumeMessage(poisoned, 0))
    assert _scheduler(runner, letters).fail_dead_lettered_runs() == 1
    runner.drain()
    assert _status(runner, poisoned) is RunStatus.FAILED
    assert _status(runner, parked) is RunStatus.COMPLETED
    assert runner.flow.state(KEY).count == 0


def test_a_stale_dead_letter_fails_nothing_even_under_a_live_holder(registry, runner):
    @task(id="napper", registry=registry)
    async def napper(payload: int) -> int:
        await wait.for_(seconds=30)
        return payload

    run_id = runner.trigger(napper, 1).run_id
    assert runner.step_once()  # first invocation: suspends, epoch 0 -> 1
    suspended = runner.client.get_run(run_id)
    assert (suspended.status, suspended.epoch) == (RunStatus.SUSPENDED, 1)
    runner.clock.advance(30)
    taken = runner.store.take_lease(run_id, 1, "live-holder", FAR, runner.clock.now())
    assert taken.run is not None
    assert taken.run.status is RunStatus.RUNNING
    # A duplicate of the first message, dead-lettered after an outage, and one
    # of the current epoch whose run a live invocation holds.
    letters = _dead_letters(ResumeMessage(run_id, 0), ResumeMessage(run_id, 1))
    assert _scheduler(runner, letters).fail_dead_lettered_runs() == 0
    assert runner.client.get_run(run_id) == taken.run
    assert letters.deleted == ["h0", "h1"]


def test_a_parked_run_counts_once_against_the_rate_limit(registry, runner):
    @task(
        id="rated-slot",
        registry=registry,
        queue=Queue("rs", concurrency_limit=1, rate_limit=RateLimit(2, 60)),
    )
    async def rated_slot(payload: str) -> str:
        return payload

    key = SlotKey("rs")
    runner.flow.acquire(key, "someone-else", FAR, 1)
    first = runner.trigger(rated_slot, "first").run_id
    runner.drain()  # passes the rate limit (1 of 2), then parks
    assert _status(runner, first) is RunStatus.WAITING_FOR_SLOT
    runner.admission.leave(key, "someone-else")
    runner.drain()  # granted: starts without a second rate admission
    second = runner.trigger(rated_slot, "second").run_id
    runner.drain()
    assert [_status(runner, r) for r in (first, second)] == [RunStatus.COMPLETED] * 2
    assert EventKind.RATE_LIMITED not in {e.kind for e in runner.timeline(second)}
