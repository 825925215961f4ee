"""Step-path records are frozen to the type checker, and hash and copy as frozen ones do."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typecheck import mypy_output

from durable_lambda.adapters.memory.runs import _StoredEntry
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.values import StoredValue

ASSIGNMENTS = """\
from durable_lambda.adapters.memory.runs import _StoredEntry
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.values import StoredValue

entry = JournalEntry(0, "a", 0, EntryKind.STEP, EntryStatus.COMPLETED)
entry.status = EntryStatus.FAILED
value = StoredValue(inline="1")
value.inline = "2"
stored = _StoredEntry(entry, value, None)
stored.result = None
"""


def test_the_type_checker_refuses_an_assignment_to_any_field(tmp_path: Path) -> None:
    out = mypy_output(tmp_path, "assign.py", ASSIGNMENTS)
    refused = [line for line in out.splitlines() if "is read-only" in line]
    assert [line.split(":")[1] for line in refused] == ["6", "8", "10"], out


def test_records_hash_and_compare_by_their_fields_and_copy_with_replace() -> None:
    entry = JournalEntry(0, "a", 0, EntryKind.STEP, EntryStatus.COMPLETED, result="1")
    same = JournalEntry(0, "a", 0, EntryKind.STEP, EntryStatus.COMPLETED, result="1")
    assert entry == same
    assert hash(entry) == hash(same)
    assert len({entry, same, StoredValue("1"), StoredValue("1")}) == 2
    failed = dataclasses.replace(entry, status=EntryStatus.FAILED)
    assert (failed.status, entry.status) == (EntryStatus.FAILED, EntryStatus.COMPLETED)
    assert _StoredEntry(entry, None, None) == _StoredEntry(same, None, None)
