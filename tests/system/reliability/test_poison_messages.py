"""Messages that can never be processed go to the DLQ without holding up the rest of their batch."""

from __future__ import annotations

import time

import pytest
from ledger_tasks import unregistered

from durable_lambda.engine.state import RunStatus

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

NOT_JSON = "this is not JSON {"
NO_SUCH_RUN = '{"run_id":"run_00000000000000000000000000000","epoch":0}'


def _depth(sqs, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def _wait_for_depth(sqs, url: str, depth: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _depth(sqs, url) < depth:
        assert time.monotonic() < deadline, f"fewer than {depth} messages in {url}"
        time.sleep(0.5)


def test_poison_messages_are_dead_lettered_and_the_rest_of_their_batch_completes(make_stack):
    stack = make_stack(
        # Long enough for the whole batch in one invocation on a busy machine: a
        # message reached with too little time left is deferred (sent again, deleted).
        timeout=60.0,
        reserved_concurrency=1,
        max_receive_count=2,
        scheduler_interval=3600,  # ticks only when the test asks
        batch_size=10,
    )
    sqs = stack.session.client("sqs")
    queue_url, dlq_url = stack.settings.resume_queue_url, stack.settings.dlq_url
    stack.poller.stop()  # hold deliveries so that every message lands in one batch
    orphan = stack.client.trigger(unregistered, {"order": 1})  # no worker registers its task
    good = [stack.trigger("ledger-quick", {"name": f"good-{i}"}) for i in range(3)]
    sqs.send_message(QueueUrl=queue_url, MessageBody=NOT_JSON)
    sqs.send_message(QueueUrl=queue_url, MessageBody=NO_SUCH_RUN)

    assert stack.poller.poll_once() == 6  # one batch, one invocation
    assert stack.worker.stats.invocations == 1
    assert (stack.poller.stats.deleted, stack.poller.stats.failed) == (3, 3)
    for handle in good:
        result = stack.client.result(handle.run_id)
        assert result is not None
        assert result.status is RunStatus.COMPLETED
    waiting = stack.client.get_run(orphan.run_id)
    assert waiting.status is RunStatus.QUEUED  # handed back for a worker that knows the task
    assert "no task 'ledger-unregistered'" in (waiting.last_delivery_error or "")

    # Delivered again, failed again, then moved to the DLQ by SQS.
    stack.poller.start()
    _wait_for_depth(sqs, dlq_url, 3, timeout=40)
    peek = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert sorted(m["Body"] for m in peek["Messages"]) == sorted(
        [NOT_JSON, NO_SUCH_RUN, f'{{"run_id":"{orphan.run_id}","epoch":0}}']
    )
    assert stack.client.get_run(orphan.run_id).status is RunStatus.QUEUED

    tick = stack.ticker.tick()
    failed = stack.client.get_run(orphan.run_id)

    assert tick.ok, tick.error
    assert tick.result["dead_letters_failed"] == 1
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert failed.error.message.startswith("resume message dead-lettered: ")
    assert "no task 'ledger-unregistered' is registered" in failed.error.message
    # Letters that name no run, or cannot be read at all, stay for a person to look at.
    assert _depth(sqs, dlq_url) == 2
    assert _depth(sqs, queue_url) == 0
