"""The AWS request budget of a token wait, counted on moto (``benchmarks/tokens.py`` relies on it).

From ``wait.create_token`` to the first step after the run resumed on the
token's completion, the completer's requests included: the create, the
suspending checkpoint, the completion's conditional write and its nudge, the
woken run's lease and its journal Query, which brings the resolved token
with it (no read of the token of its own).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest
from contract_backends import Backend

from durable_lambda import step, task, wait
from durable_lambda.engine.tokens import TokenInfo, TokenStatus
from durable_lambda.messages import decode_message
from durable_lambda.services import build_services
from durable_lambda.task import TaskRegistry
from durable_lambda.testing.aws_counter import RequestCounter
from durable_lambda.worker import Invocation

pytestmark = pytest.mark.moto

#: The target of issue 10: create, checkpoint, completion write, nudge, lease, journal.
TOKEN_WAIT_BUDGET = 6


def _drain(worker: Any, sqs: Any, queue_url: str) -> int:
    """Deliver every message now on the resume queue to ``worker``; how many there were."""
    handled = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return handled
        for message in messages:
            invocation = Invocation(f"test-{handled}", lambda: 900.0, 900.0)
            worker.handle(decode_message(message["Body"]), invocation)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1


@pytest.mark.parametrize("data", [{"approved": True}, "x" * 100_000], ids=["inline", "blob"])
def test_a_token_wait_costs_at_most_six_requests_completer_included(aws: Backend, data: Any):
    ports = aws.extra["ports"]
    settings = aws.settings
    registry = TaskRegistry()
    counter = RequestCounter().attach(ports.store.client, ports.queue.client)
    resumed: list[Counter[str]] = []
    created: list[TokenInfo] = []

    @step
    def after_the_wait() -> None:
        resumed.append(Counter(counter.calls))

    @task(id="token-budget", registry=registry)
    async def token_budget(payload: None) -> Any:
        token = await wait.create_token(timeout=3600, name="budget")
        got = await wait.for_token(token)
        await after_the_wait()
        return got

    services = build_services(ports, registry, settings)
    tokens = ports.tokens
    assert tokens is not None
    create = tokens.create

    def counted_create(token: TokenInfo) -> TokenInfo:
        counter.calls.clear()  # the wait's count starts at its create
        stored = create(token)
        created.append(stored)
        return stored

    tokens.create = counted_create
    # The driver receives through a client of its own: Lambda's event source
    # mapping receives and deletes, not the function (as in the benchmark).
    driver = boto3.session.Session(region_name="us-east-1").client("sqs")
    handle = services.client.trigger(token_budget, None)
    assert _drain(services.worker, driver, settings.resume_queue_url) == 1
    (token,) = created
    assert tokens.get(token.token_id).status is TokenStatus.PENDING  # type: ignore[union-attr]
    counter.calls["dynamodb.GetItem"] -= 1  # the test's own look
    services.client.complete_token(token.token_id, data)
    assert _drain(services.worker, driver, settings.resume_queue_url) == 1
    run = services.client.get_run(handle.run_id)
    assert run.status.value == "COMPLETED", run
    assert json.loads(run.output or "null") == data  # the completion's data, whole
    (spent,) = resumed
    assert +spent == {
        "dynamodb.PutItem": 1,  # the create
        "dynamodb.TransactWriteItems": 1,  # the suspending checkpoint
        "dynamodb.UpdateItem": 2,  # the completion, the woken run's lease
        "sqs.SendMessage": 1,  # the completion's nudge
        "dynamodb.Query": 1,  # the journal, with the resolved token
    }
    assert sum(spent.values()) <= TOKEN_WAIT_BUDGET
