"""The pure rules: which checkpoint an outcome writes, and how a run resumes."""

from __future__ import annotations

import datetime as dt

import pytest

from durable_lambda.engine.checkpoints import checkpoint_for, short
from durable_lambda.engine.journal import EntryKind, EntryStatus, ErrorInfo, JournalEntry
from durable_lambda.engine.outcome import (
    Abandoned,
    Completed,
    Expired,
    Failed,
    RetryRun,
    Suspended,
    SuspendReason,
)
from durable_lambda.engine.records import EventKind, RunRecord, TimelineEvent
from durable_lambda.engine.resume import MAX_DELAY_SECONDS, plan, plan_in
from durable_lambda.engine.state import RunStatus

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
RUN = RunRecord("r", "t", RunStatus.RUNNING, "null", NOW, NOW, attempt=2, epoch=3)
STARTED = TimelineEvent(NOW, EventKind.INVOCATION_STARTED, "invocation 1")
WAIT = JournalEntry(
    0, "$wait", 0, EntryKind.WAIT, EntryStatus.WAITING, wake_at=NOW + dt.timedelta(hours=1)
)


def test_completed_writes_the_output_and_the_entries_and_keeps_the_epoch():
    checkpoint = checkpoint_for(Completed('{"a":1}', (WAIT,)), RUN, NOW, started=STARTED)
    assert checkpoint is not None
    assert checkpoint.status is RunStatus.COMPLETED
    assert checkpoint.output == '{"a":1}'
    assert checkpoint.entries == (WAIT,)
    assert not checkpoint.new_epoch
    assert [e.kind for e in checkpoint.events] == [
        EventKind.INVOCATION_STARTED,
        EventKind.COMPLETED,
    ]


def test_failed_records_the_error_and_a_short_reason():
    error = ErrorInfo("builtins.ValueError", "bad")
    checkpoint = checkpoint_for(Failed(error, "x" * 2000), RUN, NOW)
    assert checkpoint is not None
    assert checkpoint.status is RunStatus.FAILED
    assert checkpoint.error == error
    assert len(checkpoint.events[-1].detail) == 500
    assert checkpoint.status.is_terminal


def test_expired_is_terminal_and_says_why():
    checkpoint = checkpoint_for(Expired("not started by noon"), RUN, NOW)
    assert checkpoint is not None
    assert checkpoint.status is RunStatus.EXPIRED
    assert checkpoint.events[-1].detail == "not started by noon"


def test_abandoned_writes_nothing():
    assert checkpoint_for(Abandoned("lease lost"), RUN, NOW) is None


@pytest.mark.parametrize(("delay", "timer"), [(0.0, False), (900.0, False), (900.5, True)])
def test_a_run_retry_moves_the_epoch_and_the_attempt_and_plans_its_wake_up(delay, timer):
    error = ErrorInfo("builtins.OSError", "down")
    checkpoint = checkpoint_for(RetryRun(error, delay, "attempt 2 of 5"), RUN, NOW)
    assert checkpoint is not None
    assert checkpoint.status is RunStatus.SUSPENDED
    assert checkpoint.new_epoch
    assert checkpoint.attempt == 3
    assert checkpoint.wake_at == NOW + dt.timedelta(seconds=delay)
    assert checkpoint.timer is timer
    assert checkpoint.events[-1].kind is EventKind.RUN_RETRY_SCHEDULED


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (SuspendReason.WAIT, EventKind.SUSPENDED),
        (SuspendReason.DEADLINE, EventKind.SUSPENDED),
        (SuspendReason.STEP_RETRY, EventKind.STEP_RETRY_SCHEDULED),
    ],
)
def test_a_suspension_carries_its_entries_and_wake_time(reason, kind):
    wake = NOW + dt.timedelta(hours=1)
    checkpoint = checkpoint_for(Suspended(reason, wake, (WAIT,), "x"), RUN, NOW)
    assert checkpoint is not None
    assert checkpoint.status is RunStatus.SUSPENDED
    assert checkpoint.new_epoch
    assert checkpoint.entries == (WAIT,)
    assert checkpoint.timer  # an hour is beyond SQS's delay
    assert checkpoint.events[-1].kind is kind
    assert checkpoint.events[-1].delay == 3600.0
    assert checkpoint.attempt is None  # a suspension never spends an attempt


@pytest.mark.parametrize(
    ("seconds", "delay_seconds", "timer"),
    [
        (-3.0, 0, False),  # overdue: now
        (0.2, 1, False),  # rounded up: never early
        (899.1, 900, False),
        (900.0, 900, False),
        (900.01, 900, True),
        (86_400.0, MAX_DELAY_SECONDS, True),
    ],
)
def test_plan_sends_within_sqs_delay_and_indexes_a_timer_beyond(seconds, delay_seconds, timer):
    for resume in (plan(NOW + dt.timedelta(seconds=seconds), NOW), plan_in(seconds)):
        assert resume.delay_seconds == delay_seconds
        assert resume.timer is timer


def test_plan_of_no_wake_time_is_now():
    assert plan(None, NOW).delay_seconds == 0
    assert not plan(None, NOW).timer


def test_short_marks_cut_text():
    assert short("abc", 5) == "abc"
    assert short("abcdef", 5) == "abcd…"
