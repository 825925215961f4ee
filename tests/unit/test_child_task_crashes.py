"""Child tasks under crashes and races: kills between trigger and record, a child ending early."""

from __future__ import annotations

from typing import Any

import pytest

from durable_lambda import step, task, wait
from durable_lambda.adapters.memory import MemoryBlobStore, MemoryRunStore
from durable_lambda.engine.history import History
from durable_lambda.engine.journal import EntryKind, JournalEntry
from durable_lambda.engine.records import Checkpoint, Fence, RunQuery
from durable_lambda.testing import LocalRunner
from durable_lambda.values import ValueStore


def _all() -> RunQuery:
    return RunQuery(limit=10_000)


class DieOnRecord:
    """A memory store that dies (a BaseException: the process is killed) at one record write."""

    def __init__(self, inner: MemoryRunStore, kind: EntryKind) -> None:
        self.inner = inner
        self.kind = kind
        self.kills = 0

    def record_entry(self, run_id: str, fence: Fence, entry: JournalEntry) -> None:
        if entry.kind is self.kind and self.kills == 0:
            self.kills += 1
            raise KeyboardInterrupt  # the process dies between the trigger and its record
        self.inner.record_entry(run_id, fence, entry)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_trigger_killed_before_its_record_finds_the_same_child_on_replay(registry):
    values = ValueStore(MemoryBlobStore(), 65536, 10 * 1024 * 1024)
    store = DieOnRecord(MemoryRunStore(values), EntryKind.CHILD)
    runner = LocalRunner(registry=registry, store=store, flow=store.inner.flow)  # type: ignore[arg-type]

    @task(id="child", registry=registry)
    async def child(payload: None) -> str:
        return "done"

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> str:
        return child.trigger(None).run_id

    handle = runner.trigger(parent, None)
    with pytest.raises(KeyboardInterrupt):
        runner.drain()
    assert store.kills == 1
    children_before = [r.run_id for r in store.inner.list_runs(_all()) if r.task_id == "child"]
    assert len(children_before) == 1  # created, its record lost with the process
    runner.clock.advance(1000)  # the dead holder's lease expires; the scheduler re-sends
    runner.scheduler.tick()
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.ok
    children = [r.run_id for r in store.inner.list_runs(_all()) if r.task_id == "child"]
    assert children == children_before
    assert result.output == children_before[0]


class ChildEndsBeforeSuspension:
    """Runs every due message (the child, then its nudge) just before the parent's suspension.

    That is the lost-wake race made deterministic: the child ends, and its
    nudge is delivered, while the parent is still RUNNING.
    """

    def __init__(self, inner: MemoryRunStore) -> None:
        self.inner = inner
        self.runner: LocalRunner | None = None
        self.fired = False

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> Any:
        if checkpoint.waiting_children and not self.fired and self.runner is not None:
            self.fired = True
            runner = self.runner
            while runner.queue.next_due() is not None and not runner.queue.next_due() > (  # type: ignore[operator]
                runner.clock.now()
            ):
                for message in runner.queue.receive(runner.clock.now(), max_messages=1):
                    runner.reports.append(runner.invoke_once(message.run_id, message.epoch))
        return self.inner.checkpoint(run_id, fence, checkpoint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_child_that_ends_while_the_parent_still_runs_wakes_it(registry):
    values = ValueStore(MemoryBlobStore(), 65536, 10 * 1024 * 1024)
    store = ChildEndsBeforeSuspension(MemoryRunStore(values))
    runner = LocalRunner(registry=registry, store=store, flow=store.inner.flow)  # type: ignore[arg-type]
    store.runner = runner

    @task(id="child", registry=registry)
    async def child(payload: None) -> str:
        return "fast"

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> str:
        got = await child.trigger_and_wait(None)
        return got.unwrap()  # type: ignore[no-any-return]

    result = runner.run(parent, None)
    assert store.fired
    assert result.output == "fast"
    nudges = [r for r in runner.reports if r.run_id == result.run_id and r.action == "busy"]
    assert len(nudges) == 1  # the nudge found the parent running, and was re-sent
    record = runner.client.get_run(result.run_id)
    assert record.finished_at is not None
    # Woken by the re-sent nudge, not by its fallback wake time an hour later.
    assert (record.finished_at - record.created_at).total_seconds() < 60


class DieAtFirstSuspension:
    """Kills the parent's invocation at its checkpoint suspending on children; keeps checkpoints."""

    def __init__(self, inner: MemoryRunStore) -> None:
        self.inner = inner
        self.kills = 0
        self.checkpoints: list[Checkpoint] = []

    def checkpoint(self, run_id: str, fence: Fence, checkpoint: Checkpoint) -> Any:
        if checkpoint.waiting_children and self.kills == 0:
            self.kills += 1
            raise KeyboardInterrupt  # the process dies before its suspension is written
        self.checkpoints.append(checkpoint)
        return self.inner.checkpoint(run_id, fence, checkpoint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_parent_killed_before_its_suspension_finds_its_finished_children_once(registry):
    values = ValueStore(MemoryBlobStore(), 65536, 10 * 1024 * 1024)
    store = DieAtFirstSuspension(MemoryRunStore(values))
    runner = LocalRunner(registry=registry, store=store, flow=store.inner.flow)  # type: ignore[arg-type]

    @task(id="child", registry=registry)
    async def child(payload: int) -> int:
        return payload

    @task(id="parent", registry=registry)
    async def parent(payload: None) -> list[int]:
        results = await child.batch_trigger_and_wait([1, 2])
        return [r.unwrap() for r in results]

    handle = runner.trigger(parent, None)
    with pytest.raises(KeyboardInterrupt):
        runner.drain()
    runner.drain()  # the children run and end; their nudges find the parent RUNNING (dead)
    runner.clock.advance(1000)  # the dead holder's lease expires; the scheduler re-sends
    runner.scheduler.tick()
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert result is not None
    assert result.output == [1, 2]
    assert [r.task_id for r in runner.client.list_runs(_all())].count("child") == 2
    for checkpoint in store.checkpoints:  # DynamoDB refuses two writes of one item per transaction
        slots = [e.slot for e in checkpoint.entries]
        assert len(slots) == len(set(slots)), checkpoint.entries


def test_a_runs_first_invocation_reads_no_journal_and_later_ones_do(registry):
    values = ValueStore(MemoryBlobStore(), 65536, 10 * 1024 * 1024)
    store = CountingLoads(MemoryRunStore(values))
    runner = LocalRunner(registry=registry, store=store, flow=store.inner.flow)  # type: ignore[arg-type]

    @step
    def one() -> int:
        return 1

    @task(id="t", registry=registry)
    async def body(payload: None) -> int:
        first = await one()
        await wait.for_(minutes=5)
        return first + await one()

    result = runner.run(body, None)
    assert result.output == 2
    assert runner.invocations[result.run_id] == 2
    assert store.loads == 1  # the second invocation's replay


class CountingLoads:
    def __init__(self, inner: MemoryRunStore) -> None:
        self.inner = inner
        self.loads = 0

    def load_journal(self, run_id: str) -> list[JournalEntry]:
        self.loads += 1
        return self.inner.load_journal(run_id)

    def load_history(self, run_id: str) -> History:
        self.loads += 1
        return self.inner.load_history(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
