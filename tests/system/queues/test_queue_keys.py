"""Concurrency keys: each key has its own limit on the queue."""

from __future__ import annotations

from collections import defaultdict

import pytest
from ledger import read_ledger
from queue_helpers import flow_client, intervals, max_concurrency
from queue_tasks import KEYED
from stack_waits import wait_all

from durable_lambda.engine.state import RunStatus
from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

TIMEOUT = 10.0
KEYS = ("tenant-a", "tenant-b")
PER_KEY = 6


def test_two_keys_with_limit_two_run_four_at_once_never_three_of_one_key(make_stack, ledger):
    stack = make_stack(
        Settings(short_wait_seconds=0),
        timeout=TIMEOUT,
        reserved_concurrency=6,  # room for 4 running and 2 parking at once
        visibility_timeout=10,
        scheduler_interval=1.0,
        batch_size=1,
    )
    handles = [
        stack.trigger("q-keyed", {"seconds": 1.0, "label": f"{key}-{i}"}, concurrency_key=key)
        for i in range(PER_KEY)
        for key in KEYS
    ]
    runs = wait_all(stack, [h.run_id for h in handles], timeout=90)
    found = intervals(read_ledger(ledger), killed_bound=TIMEOUT)
    per_key = defaultdict(list)
    for interval in found:
        per_key[interval.key].append(interval)

    assert [r.status for r in runs] == [RunStatus.COMPLETED] * len(handles)
    assert sorted(per_key) == sorted(KEYS)
    assert {key: len(found_) for key, found_ in per_key.items()} == dict.fromkeys(KEYS, PER_KEY)
    for key in KEYS:
        peak, when = max_concurrency(per_key[key])
        assert peak <= KEYED.concurrency_limit, f"{peak} runs of {key} at once at t={when}"
    total, _ = max_concurrency(found)
    assert total == len(KEYS) * KEYED.concurrency_limit  # never more, and it did reach 4
    client = flow_client(stack)
    for key in (*KEYS, None):  # the key-less counter was never used
        state = client.queue_state(KEYED.name, key)
        assert (state.count, state.waiting) == (0, 0), key
