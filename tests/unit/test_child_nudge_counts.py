"""A parent waiting on N children reads them once, when the last ends, not at every nudge."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from durable_lambda import task, wait
from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage, RunQuery
from durable_lambda.engine.state import RunStatus
from durable_lambda.messages import PoisonMessageError, decode_message, encode_message
from durable_lambda.testing import LocalRunner

CHILDREN = 10


def _count_reads(runner: LocalRunner) -> Counter[str]:
    """Counts the store's reads of many runs (how a parent reads its children), by caller run."""
    reads: Counter[str] = Counter()
    get_runs = runner.store.get_runs

    def counted(run_ids: Any) -> Any:
        reads["get_runs"] += 1
        reads["runs_read"] += len(run_ids)
        return get_runs(run_ids)

    runner.store.get_runs = counted  # type: ignore[method-assign]
    return reads


def _fan_out(registry):
    @task(id="child", registry=registry)
    async def child(payload: int) -> int:
        # Child i ends at 10 (i + 1) s: each nudge is delivered before the next
        # child ends, so the parent hears of every end while others still run.
        await wait.for_(seconds=10 * (payload + 1))
        return payload * 2

    @task(id="parent", registry=registry)
    async def parent(payload: int) -> list[int]:
        results = await child.batch_trigger_and_wait(list(range(payload)))
        return [r.unwrap() for r in results]

    return parent


def test_a_parent_reads_its_children_once_when_the_last_of_them_ends(registry, runner):
    parent = _fan_out(registry)
    reads = _count_reads(runner)

    result = runner.run(parent, CHILDREN)

    assert result.output == [i * 2 for i in range(CHILDREN)]
    # Triggered, then woken once: by the last child's nudge. Every other nudge was counted.
    assert runner.invocations[result.run_id] == 2
    assert reads == {"get_runs": 1, "runs_read": CHILDREN}


def test_a_batchs_children_count_their_own_ends_and_one_nudge_wakes_the_parent(registry, runner):
    parent = _fan_out(registry)
    nudges = _recorded_nudges(runner)

    result = runner.run(parent, CHILDREN)

    assert result.output == [i * 2 for i in range(CHILDREN)]
    # Each child counted its end on the parent in its own invocation; only the
    # last, whose end may end the wait, sent a message. A nudge per child would
    # cost an invocation (and an SQS message) per child just to be counted.
    assert [m.child for m in nudges] == [_last_child(runner)]
    assert not [r for r in runner.reports if "counted" in r.detail]  # no invocation just to count
    assert runner.invocations[result.run_id] == 2


def _last_child(runner: LocalRunner) -> str:
    children = runner.client.list_runs(RunQuery(task_id="child"))
    return max(children, key=lambda run: run.finished_at or run.created_at).run_id


def test_a_duplicate_childs_end_is_counted_once(registry, runner):
    parent = _fan_out(registry)
    reads = _count_reads(runner)
    send = runner.queue.send

    def twice(message: ResumeMessage, delay_seconds: int = 0) -> None:
        send(message, delay_seconds)
        if message.epoch == ANY_EPOCH:
            send(message, delay_seconds)  # every nudge delivered twice

    runner.queue.send = twice  # type: ignore[method-assign]

    result = runner.run(parent, CHILDREN)

    assert result.output == [i * 2 for i in range(CHILDREN)]
    # Had a duplicate counted twice, the parent would have woken before its last
    # child ended, read them all and suspended again.
    assert reads == {"get_runs": 1, "runs_read": CHILDREN}
    assert runner.invocations[result.run_id] == 2


class _Killed(BaseException):
    """Stands for a SIGKILL of the worker process."""


def test_a_child_killed_between_its_end_and_its_nudge_nudges_when_its_message_returns(registry):
    runner = LocalRunner(registry=registry)
    parent = _fan_out(registry)
    send = runner.queue.send
    killed: list[str] = []

    def die_at_first_nudge(message: ResumeMessage, delay_seconds: int = 0) -> None:
        if message.epoch == ANY_EPOCH and not killed:
            killed.append(message.run_id)
            raise _Killed
        send(message, delay_seconds)

    runner.queue.send = die_at_first_nudge  # type: ignore[method-assign]
    handle = runner.trigger(parent, 1)
    with pytest.raises(_Killed):
        runner.drain()
    assert killed == [handle.run_id]
    (child,) = runner.client.list_runs(RunQuery(task_id="child"))
    child_id = child.run_id
    assert child.status is RunStatus.COMPLETED  # its end is stored; its nudge was not sent
    # SQS delivers the dead invocation's message again once its visibility timeout passes.
    runner.clock.advance(60)
    runner.queue.send(ResumeMessage(child_id, child.epoch), 0)
    runner.drain()

    record = runner.client.get_run(handle.run_id)
    assert record.status is RunStatus.COMPLETED
    assert record.finished_at is not None
    # Woken by the re-sent nudge, not by its fallback wake time an hour later.
    assert (record.finished_at - record.created_at).total_seconds() < 600


def test_a_nudge_names_its_child_on_the_wire_and_only_a_nudge_may():
    nudge = ResumeMessage("run_parent", ANY_EPOCH, "run_child")
    assert decode_message(encode_message(nudge)) == nudge
    plain = ResumeMessage("run_a", 3)
    assert encode_message(plain) == '{"run_id":"run_a","epoch":3}'  # unchanged for the rest
    with pytest.raises(PoisonMessageError, match="child"):
        decode_message('{"run_id":"run_a","epoch":3,"child":"run_b"}')
    with pytest.raises(PoisonMessageError, match="child"):
        decode_message('{"run_id":"run_a","epoch":-1,"child":""}')


def test_a_lone_childs_nudge_takes_its_parent_without_a_count(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: int) -> int:
        return payload

    @task(id="parent", registry=registry)
    async def parent(payload: int) -> int:
        return (await child.trigger_and_wait(payload)).unwrap()  # type: ignore[no-any-return]

    counts: list[str] = []
    note = runner.store.note_child_end

    def counted(run_id: str, child_id: str) -> bool:
        counts.append(child_id)
        return note(run_id, child_id)

    runner.store.note_child_end = counted  # type: ignore[method-assign]
    result = runner.run(parent, 7)
    assert result.output == 7
    # One child: its end may end the wait, so the parent keeps no count and the
    # nudge takes it in one request, as before counts existed.
    assert counts == []
    assert runner.invocations[result.run_id] == 2


def test_batched_children_of_a_parent_that_ended_send_no_nudge(registry, runner):
    @task(id="child", registry=registry)
    async def child(payload: int) -> int:
        await wait.for_(seconds=10)  # ends after its parent
        return payload

    @task(id="parent", registry=registry)
    async def parent(payload: int) -> int:
        return len(child.batch_trigger(list(range(payload))))  # not awaited

    nudges = _recorded_nudges(runner)
    result = runner.run(parent, 3)
    runner.drain()

    assert result.output == 3
    children = runner.client.list_runs(RunQuery(task_id="child"))
    assert [c.status for c in children] == [RunStatus.COMPLETED] * 3
    # Each child's count found its parent ended: a nudge would only be STALE there.
    assert nudges == []


def _recorded_nudges(runner: Any) -> list[ResumeMessage]:
    """The nudges (``ANY_EPOCH`` messages) ``runner``'s queue is sent from now on, in order."""
    nudges: list[ResumeMessage] = []
    send = runner.queue.send

    def recorded(message: ResumeMessage, delay_seconds: int = 0) -> None:
        if message.epoch == ANY_EPOCH:
            nudges.append(message)
        send(message, delay_seconds)

    runner.queue.send = recorded
    return nudges
