"""Value sizes: inline up to the limit, blobs above it, a clear error above the maximum."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, JournalEntry
from durable_lambda.engine.records import Checkpoint, EventKind, Fence, TimelineEvent
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import PayloadTooLarge

OWNER = "owner-a"


def json_text(size: int, fill: str = "x") -> str:
    """A JSON string literal of exactly ``size`` bytes."""
    return '"' + fill * (size - 2) + '"'


def held(backend: Backend, **changes) -> str:
    run = backend.new_run(**changes)
    backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    return run.run_id


def completed(result: str, seq: int = 0) -> JournalEntry:
    return JournalEntry(seq, "fetch", seq, EntryKind.STEP, EntryStatus.COMPLETED, result=result)


def test_a_result_of_exactly_the_inline_limit_stays_inline(backend: Backend):
    run_id = held(backend)
    value = json_text(backend.settings.inline_limit)
    backend.store.record_entry(run_id, Fence(OWNER, 0), completed(value))
    assert backend.blob_count() == 0
    assert backend.store.load_journal(run_id)[0].result == value


def test_a_result_one_byte_above_the_inline_limit_goes_to_the_blob_store(backend: Backend):
    run_id = held(backend)
    value = json_text(backend.settings.inline_limit + 1)
    backend.store.record_entry(run_id, Fence(OWNER, 0), completed(value))
    assert backend.blob_count() == 1
    assert backend.store.load_journal(run_id)[0].result == value


def test_the_inline_limit_counts_utf8_bytes_not_characters(backend: Backend):
    run_id = held(backend)
    # "é" is two bytes: this text has fewer characters than the limit but more bytes.
    value = json_text(backend.settings.inline_limit // 2 + 2, fill="é")
    assert len(value) < backend.settings.inline_limit < len(value.encode())
    backend.store.record_entry(run_id, Fence(OWNER, 0), completed(value))
    assert backend.blob_count() == 1
    assert backend.store.load_journal(run_id)[0].result == value


def test_values_larger_than_a_dynamodb_item_round_trip_through_blobs(backend: Backend):
    big = json_text(450 * 1024)
    run_id = held(backend, payload=big)
    fence = Fence(OWNER, 0)
    backend.store.record_entry(run_id, fence, completed(big))
    after = backend.store.checkpoint(
        run_id, fence, Checkpoint(status=RunStatus.COMPLETED, output=big)
    )
    assert backend.store.load_journal(run_id)[0].result == big
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert (stored.payload, stored.output) == (big, big)
    assert after == stored
    # Content-addressed: the same bytes are one blob however often they are stored.
    assert backend.blob_count() == 1


def test_a_result_above_the_maximum_fails_naming_the_step_and_both_sizes(backend: Backend):
    run_id = held(backend)
    limit = backend.settings.max_value_bytes
    with pytest.raises(PayloadTooLarge) as raised:
        backend.store.record_entry(run_id, Fence(OWNER, 0), completed(json_text(limit + 1)))
    error = raised.value
    assert (error.size, error.limit) == (limit + 1, limit)
    assert "fetch#0" in error.what
    assert str(limit + 1) in str(error)
    assert str(limit) in str(error)
    assert backend.store.load_journal(run_id) == []
    assert backend.blob_count() == 0


def test_an_output_above_the_maximum_fails_and_leaves_the_run_held(backend: Backend):
    run_id = held(backend)
    limit = backend.settings.max_value_bytes
    with pytest.raises(PayloadTooLarge, match="output"):
        backend.store.checkpoint(
            run_id,
            Fence(OWNER, 0),
            Checkpoint(status=RunStatus.COMPLETED, output=json_text(limit + 1)),
        )
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert (stored.status, stored.lease_owner) == (RunStatus.RUNNING, OWNER)
    # The worker then fails the run with that reason, under the same fence.
    failed = backend.store.checkpoint(run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.FAILED))
    assert failed.status is RunStatus.FAILED


def test_a_payload_above_the_maximum_is_refused_at_creation(backend: Backend):
    limit = backend.settings.max_value_bytes
    with pytest.raises(PayloadTooLarge, match="payload"):
        backend.new_run(run_id="run_huge", payload=json_text(limit + 1))
    assert backend.store.get_run("run_huge") is None


def test_a_checkpoint_holding_a_result_above_the_maximum_writes_nothing(backend: Backend):
    run_id = held(backend)
    limit = backend.settings.max_value_bytes
    entries = (completed('"small"', 0), completed(json_text(limit + 1), 1))
    with pytest.raises(PayloadTooLarge, match="fetch#1"):
        backend.store.checkpoint(
            run_id,
            Fence(OWNER, 0),
            Checkpoint(status=RunStatus.COMPLETED, output="1", entries=entries),
        )
    assert backend.store.load_journal(run_id) == []
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert stored.status is RunStatus.RUNNING


def large_error(backend: Backend) -> ErrorInfo:
    """An error whose traceback alone is above the inline limit."""
    frames = '  File "task.py", line 1, in charge\n' * (backend.settings.inline_limit // 30)
    return ErrorInfo("builtins.RuntimeError", "declined", f"Traceback:\n{frames}")


def test_a_step_error_with_a_large_traceback_goes_to_the_blob_store(backend: Backend):
    run_id = held(backend)
    error = large_error(backend)
    failed = JournalEntry(0, "charge", 0, EntryKind.STEP, EntryStatus.FAILED, error=error)
    backend.store.record_entry(run_id, Fence(OWNER, 0), failed)
    assert backend.blob_count() == 1
    assert backend.store.load_journal(run_id)[0].error == error


def test_a_run_error_with_a_large_traceback_goes_to_the_blob_store(backend: Backend):
    run_id = held(backend)
    error = large_error(backend)
    backend.store.checkpoint(
        run_id, Fence(OWNER, 0), Checkpoint(status=RunStatus.FAILED, error=error)
    )
    assert backend.blob_count() == 1
    stored = backend.store.get_run(run_id)
    assert stored is not None
    assert stored.error == error


def test_a_run_failed_from_outside_with_a_large_traceback_keeps_it_in_the_blob_store(
    backend: Backend,
):
    run = backend.new_run()
    error = large_error(backend)
    event = TimelineEvent(at(50), EventKind.DEAD_LETTERED, "dead-lettered")
    failed = backend.store.fail_run(run.run_id, error, event, epoch=0)
    assert failed is not None
    assert failed.error == error
    assert backend.blob_count() == 1
    stored = backend.store.get_run(run.run_id)
    assert stored is not None
    assert stored.error == error
