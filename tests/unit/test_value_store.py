"""ValueStore: inline up to the limit in UTF-8 bytes, a blob above it, refused past the maximum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_lambda.adapters.memory.blobs import MemoryBlobStore
from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, JournalEntry
from durable_lambda.errors import PayloadTooLarge
from durable_lambda.values import ValueStore


@given(text=st.text(max_size=40), limit=st.integers(min_value=0, max_value=80))
def test_a_value_stays_inline_exactly_when_its_utf8_bytes_fit(text: str, limit: int) -> None:
    # Multi-byte characters included: a character count is not the size.
    values = ValueStore(MemoryBlobStore(), limit, 1_000)
    stored = values.store("v", text)
    fits = len(text.encode("utf-8")) <= limit
    assert (stored.inline, stored.ref is None) == ((text, True) if fits else (None, False))
    assert values.load(stored) == text


def test_a_refused_step_result_is_named_by_its_step() -> None:
    values = ValueStore(MemoryBlobStore(), 4, 10)
    entry = JournalEntry(
        0, "charge", 1, EntryKind.STEP, EntryStatus.COMPLETED, result='"' + "é" * 6 + '"'
    )
    with pytest.raises(PayloadTooLarge, match=r"step 'charge#1' result is 14 bytes"):
        values.store_entry(entry)
    failed = JournalEntry(
        0, "charge", 1, EntryKind.STEP, EntryStatus.FAILED, error=ErrorInfo("E", "m")
    )
    result, error = ValueStore(MemoryBlobStore(), 1_000, 10_000).store_entry(failed)
    assert result is None
    assert error is not None
