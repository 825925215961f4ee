"""Replay: a new run of the same task, from the start or from a named step (memory and moto).

Step bodies write the step ledger, so "not executed again" is counted from what
ran, not inferred from the journal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from contract_backends import Backend
from ledger import LEDGER_ENV, append, read_ledger

from durable_lambda import TaskContext, step, task
from durable_lambda.engine.journal import EntryKind
from durable_lambda.engine.records import EventKind
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import PayloadValidationError, RunNotFoundError, UnknownStepError
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

BIG = 70 * 1024  # above the contract settings' 64 KB inline limit: the value goes to a blob


@step()
def fetch(n: int) -> int:
    append("ran")
    return n + 1


@step()
def double(n: int) -> int:
    append("ran")
    return n * 2


@step()
def triple(n: int) -> int:
    append("ran")
    return n * 3


@step()
def pack(n: int) -> str:
    append("ran")
    return "x" * BIG + str(n)


@step()
def label(parcel: str) -> int:
    append("ran")
    return len(parcel)


@step()
def finish(total: int) -> int:
    append("ran")
    return total


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    async def ship(ctx: TaskContext, n: int) -> int:
        parcel = await pack(n)
        return int(await label(parcel))

    @task(id="pipeline", registry=registry)
    async def pipeline(payload: dict[str, int], ctx: TaskContext) -> dict[str, int]:
        a = await fetch(payload["n"])
        b, c = await asyncio.gather(double(a), triple(a))  # scopes t0 and t1
        shipped = await ctx.run_in_child_context(ship, b + c, name="ship")
        return {"a": a, "b": b, "c": c, "total": await finish(shipped)}

    return registry


@pytest.fixture
def ledger_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(path))
    return path


def _runner(backend: Backend) -> LocalRunner:
    return LocalRunner(
        registry=_registry(), store=backend.store, flow=backend.flow, tokens=backend.tokens
    )


def _ran(ledger_file: Path, run_id: str) -> list[str]:
    """The steps whose bodies ran for ``run_id``, in order."""
    return [line["step"] for line in read_ledger(ledger_file) if line["run"] == run_id]


def _all_runs(backend: Backend) -> list[str]:
    from durable_lambda.engine.records import RunQuery  # noqa: PLC0415

    return sorted(r.run_id for r in backend.store.list_runs(RunQuery(limit=100)))


def test_replay_from_a_named_step_does_not_execute_the_steps_before_it(
    backend: Backend, ledger_file: Path
):
    runner = _runner(backend)
    original = runner.run("pipeline", {"n": 1})
    assert original.ok, original.error
    everything = ["fetch#0", "t0/double#0", "t1/triple#0", "ship#0/pack#0", "ship#0/label#0"]
    assert sorted(_ran(ledger_file, original.run_id)) == sorted([*everything, "finish#0"])
    blobs = backend.blob_count()

    # "label" runs inside the child context "ship": the context's own record is
    # not copied (it would replay the block whole), the step before it inside is.
    handle = runner.client.replay(original.run_id, from_step="label")
    runner.drain()

    replayed = runner.client.result(handle.run_id)
    assert replayed is not None
    assert replayed.ok, replayed.error
    assert replayed.output == original.output
    assert _ran(ledger_file, handle.run_id) == ["ship#0/label#0", "finish#0"]
    record = runner.client.get_run(handle.run_id)
    assert record.replay_of == original.run_id
    assert record.task_id == "pipeline"
    # pack's 70 KB result was copied by its content hash: no second blob.
    assert backend.blob_count() == blobs
    kinds = {(e.scope, e.name): e.kind for e in backend.store.load_journal(handle.run_id)}
    assert kinds[("", "ship")] is EntryKind.CONTEXT  # recorded again by the replay
    events = backend.store.list_events(handle.run_id)
    triggered = [e for e in events if e.kind is EventKind.TRIGGERED]
    assert [original.run_id in e.detail for e in triggered] == [True]


def test_replay_from_a_step_in_a_parallel_branch_copies_what_came_before_it(
    backend: Backend, ledger_file: Path
):
    runner = _runner(backend)
    original = runner.run("pipeline", {"n": 2})
    handle = runner.client.replay(original.run_id, from_step="t1/triple#0")
    runner.drain()
    replayed = runner.client.result(handle.run_id)
    assert replayed is not None
    assert replayed.output == original.output
    assert "fetch#0" not in _ran(ledger_file, handle.run_id)
    assert "t0/double#0" not in _ran(ledger_file, handle.run_id)
    assert "t1/triple#0" in _ran(ledger_file, handle.run_id)


def test_replay_without_a_step_runs_everything_again_with_a_new_payload(
    backend: Backend, ledger_file: Path
):
    runner = _runner(backend)
    original = runner.run("pipeline", {"n": 1})
    handle = runner.client.replay(original.run_id, {"n": 5})
    runner.drain()
    replayed = runner.client.result(handle.run_id)
    assert replayed is not None
    assert replayed.output is not None
    assert replayed.output["a"] == 6
    assert len(_ran(ledger_file, handle.run_id)) == 6
    assert runner.client.get_run(handle.run_id).replay_of == original.run_id


def test_copied_steps_keep_their_recorded_results_under_a_new_payload(
    backend: Backend, ledger_file: Path
):
    runner = _runner(backend)
    original = runner.run("pipeline", {"n": 1})
    handle = runner.client.replay(original.run_id, {"n": 100}, from_step="finish")
    runner.drain()
    replayed = runner.client.result(handle.run_id)
    assert replayed is not None
    assert replayed.output == original.output  # every step before finish is the original's
    assert _ran(ledger_file, handle.run_id) == ["finish#0"]


def test_an_unknown_step_names_itself_and_the_steps_and_writes_nothing(
    backend: Backend, ledger_file: Path
):
    runner = _runner(backend)
    original = runner.run("pipeline", {"n": 1})
    before = _all_runs(backend)
    writes = backend.counter.dynamodb_writes() if backend.counter else None
    with pytest.raises(UnknownStepError) as raised:
        runner.client.replay(original.run_id, from_step="lable")
    assert raised.value.step == "lable"
    assert raised.value.known == ["fetch", "double", "triple", "ship", "pack", "label", "finish"]
    assert "'lable'" in str(raised.value)
    assert "label" in str(raised.value)
    with pytest.raises(PayloadValidationError):
        runner.client.replay(original.run_id, {"n": "many"}, from_step="finish")
    with pytest.raises(RunNotFoundError):
        runner.client.replay("run_nope", from_step="fetch")
    assert _all_runs(backend) == before
    if backend.counter is not None:
        assert backend.counter.dynamodb_writes() == writes


def test_a_long_journal_is_copied_in_batches_of_25(backend: Backend, ledger_file: Path):
    registry = TaskRegistry()

    @task(id="long", registry=registry)
    async def long(payload: int, ctx: TaskContext) -> int:
        total = 0
        for i in range(payload):
            total += await ctx.step("add", _adder(i))
        return total + await ctx.step("last", _adder(0))

    runner = LocalRunner(
        registry=registry, store=backend.store, flow=backend.flow, tokens=backend.tokens
    )
    original = runner.run(long, 60)
    if backend.counter is not None:
        backend.counter.reset()
    handle = runner.client.replay(original.run_id, from_step="last")
    if backend.counter is not None:
        assert backend.counter.count("dynamodb", ["BatchWriteItem"]) == 3  # 25 + 25 + 10
    runner.drain()
    replayed = runner.client.result(handle.run_id)
    assert replayed is not None
    assert replayed.output == original.output
    assert _ran(ledger_file, handle.run_id) == ["last#0"]
    assert runner.client.get_run(handle.run_id).status is RunStatus.COMPLETED


def _adder(i: int) -> Any:
    def body() -> int:
        append("ran")
        return i

    return body
