"""What a replay from a named step copies of a journal (engine/replays.py, pure)."""

from __future__ import annotations

import pytest

from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.replays import find_step, history_before, step_names
from durable_lambda.errors import UnknownStepError

DONE = EntryStatus.COMPLETED


def entry(
    seq: int,
    name: str,
    *,
    scope: str = "",
    occurrence: int = 0,
    kind: EntryKind = EntryKind.STEP,
    status: EntryStatus = DONE,
) -> JournalEntry:
    return JournalEntry(seq, name, occurrence, kind, status, result="1", scope=scope, position=seq)


def keys(entries: list[JournalEntry]) -> list[str]:
    return [e.key for e in entries]


def test_entries_before_the_first_occurrence_in_journal_order_are_copied():
    journal = [
        entry(3, "charge", occurrence=1),
        entry(0, "fetch"),
        entry(2, "charge", scope="t0"),
        entry(1, "charge"),
    ]
    assert keys(history_before("r", journal, "charge")) == ["fetch#0"]
    assert keys(history_before("r", journal, "charge#1")) == ["fetch#0", "charge#0", "t0/charge#0"]
    assert keys(history_before("r", journal, "t0/charge#0")) == ["fetch#0", "charge#0"]
    assert find_step("r", journal, "charge").seq == 1


def test_a_block_enclosing_the_step_is_not_copied_but_its_earlier_steps_are():
    journal = [
        entry(0, "fetch"),
        entry(1, "ship", kind=EntryKind.CONTEXT),
        entry(2, "pack", scope="ship#0"),
        entry(3, "inner", scope="ship#0", kind=EntryKind.BATCH),
        entry(4, "weigh", scope="ship#0/inner#0/b0"),
        entry(5, "label", scope="ship#0/inner#0/b1"),
    ]
    copied = history_before("r", journal, "label")
    assert keys(copied) == ["fetch#0", "ship#0/pack#0", "ship#0/inner#0/b0/weigh#0"]


def test_a_block_beside_the_step_is_copied_whole():
    journal = [
        entry(0, "ship", kind=EntryKind.CONTEXT),
        entry(1, "pack", scope="ship#0"),
        entry(2, "shipped"),
    ]
    assert keys(history_before("r", journal, "shipped")) == ["ship#0", "ship#0/pack#0"]


@pytest.mark.parametrize("status", [EntryStatus.RETRYING, EntryStatus.WAITING, EntryStatus.STARTED])
def test_calls_without_a_settled_outcome_are_made_afresh(status: EntryStatus):
    journal = [entry(0, "fetch"), entry(1, "flaky", scope="t0", status=status), entry(2, "last")]
    assert keys(history_before("r", journal, "last")) == ["fetch#0"]


def test_a_failed_step_keeps_its_failure():
    journal = [entry(0, "charge", status=EntryStatus.FAILED), entry(1, "refund")]
    assert [e.status for e in history_before("r", journal, "refund")] == [EntryStatus.FAILED]


def test_an_unknown_step_names_itself_and_the_users_steps():
    journal = [
        entry(0, "fetch"),
        entry(1, "$wait", kind=EntryKind.WAIT),
        entry(2, "fetch", occurrence=1),
        entry(3, "charge"),
    ]
    assert step_names(journal) == ["fetch", "charge"]
    with pytest.raises(UnknownStepError) as raised:
        history_before("run_1", journal, "chrage")
    assert (raised.value.run_id, raised.value.step) == ("run_1", "chrage")
    assert raised.value.known == ["fetch", "charge"]
    assert str(raised.value) == "run run_1 recorded no step 'chrage' (its steps: fetch, charge)"


def test_an_empty_journal_has_no_step_to_replay_from():
    with pytest.raises(UnknownStepError, match=r"its steps: none"):
        history_before("r", [], "fetch")
