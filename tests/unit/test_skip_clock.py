"""SkipClock: skips jump ahead at once; a frozen clock ignores real time."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from durable_lambda.testing import SkipClock

START = dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC)


def test_a_frozen_clock_moves_only_when_advanced_or_skipped() -> None:
    clock = SkipClock(START, frozen=True)
    mono = clock.monotonic()
    time.sleep(0.05)
    assert clock.now() == START
    clock.advance(60)
    asyncio.run(clock.sleep(30))
    assert clock.now() == START + dt.timedelta(seconds=90)
    assert clock.monotonic() == pytest.approx(mono + 90)


def test_a_running_clock_follows_real_time_plus_skips() -> None:
    clock = SkipClock(START)
    time.sleep(0.05)
    clock.advance(60)
    assert clock.now() >= START + dt.timedelta(seconds=60.05)


def test_going_back_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        SkipClock(START, frozen=True).advance(-1)
