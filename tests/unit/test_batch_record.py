"""A batch's journal record: columns in, the same BatchResult out, old records still read."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from durable_lambda import BatchResult, CompletionReason, TaskContext, task, wait
from durable_lambda.engine.batch import BatchItem, ItemStatus, batch_of_record, batch_record
from durable_lambda.engine.journal import EntryKind, ErrorInfo
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@st.composite
def batches(draw: st.DrawFn) -> BatchResult[Any]:
    statuses = draw(st.lists(st.sampled_from(list(ItemStatus)), max_size=12))
    names = draw(st.lists(st.text(min_size=1, max_size=4), min_size=len(statuses), unique=True))
    items = []
    for index, status in enumerate(statuses):
        if status is ItemStatus.SUCCEEDED:
            items.append(BatchItem(index, names[index], status, draw(json_values)))
        elif status is ItemStatus.FAILED:
            error = ErrorInfo(draw(st.text(max_size=8)), draw(st.text(max_size=20)))
            items.append(BatchItem(index, names[index], status, error=error))
        else:
            items.append(BatchItem(index, names[index], status))
    return BatchResult(tuple(items), draw(st.sampled_from(list(CompletionReason))))


@given(batches())
def test_a_batch_record_reads_back_as_the_same_result(batch: BatchResult[Any]) -> None:
    stored = json.loads(json.dumps(batch_record(batch)))  # as the journal holds it
    assert batch_of_record(stored) == batch


@given(batches())
def test_a_record_written_as_items_still_reads(batch: BatchResult[Any]) -> None:
    # Runs recorded before records had columns must keep replaying.
    assert batch_of_record(json.loads(json.dumps(batch.to_json()))) == batch


def test_each_status_has_its_own_letter_in_a_record() -> None:
    letters = [status[0] for status in ItemStatus]
    assert len(set(letters)) == len(letters)


def test_a_map_records_columns_not_an_object_per_item_and_replays_them() -> None:
    registry = TaskRegistry()
    runner = LocalRunner(registry=registry)

    async def item(ctx: TaskContext, value: int, index: int) -> int:
        if value == 2:
            raise ValueError("two")
        return value * 10

    @task(id="cols", registry=registry)
    async def flow(payload: None, ctx: TaskContext) -> list[Any]:
        batch = await ctx.map([1, 2, 3], item)
        await wait.for_(hours=1)  # the run suspends: the end replays the batch's record
        return [[i.name, i.status, i.result, i.error and i.error.message] for i in batch.items]

    result = runner.run(flow, None)
    assert result.output == [
        ["0", "SUCCEEDED", 10, None],
        ["1", "FAILED", None, "two"],
        ["2", "SUCCEEDED", 30, None],
    ]
    (record,) = [e for e in runner.journal(result.run_id) if e.kind is EntryKind.BATCH]
    assert json.loads(record.result or "") == {
        "reason": "ALL_COMPLETED",
        "status": "SFS",
        "names": ["0", "1", "2"],
        "results": [10, None, 30],
        "errors": [[1, "ValueError", "two"]],
    }
    assert runner.invocations[result.run_id] == 2  # the output came from a replay
