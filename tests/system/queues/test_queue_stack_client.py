"""The emulated stack's client controls queues, like ``services.default_client()`` does."""

from __future__ import annotations

import pytest
from queue_tasks import ELASTIC

from durable_lambda.settings import Settings

pytestmark = [pytest.mark.emulator]


def test_the_stack_client_controls_queues(make_stack):
    stack = make_stack(Settings(), scheduler_interval=3600.0)
    assert stack.client.pause_queue(ELASTIC.name).paused
    assert stack.client.queue_state(ELASTIC.name).paused
    assert not stack.client.resume_queue(ELASTIC.name).paused
