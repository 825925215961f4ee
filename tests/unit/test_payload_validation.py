from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from durable_lambda import (
    ConfigurationError,
    PayloadValidationError,
    Queue,
    RetryPolicy,
    RunStatus,
    TaskContext,
    step,
    task,
)
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.engine.records import RunQuery


class OrderIn(BaseModel):
    order_id: str
    amount: int = Field(gt=0)


def test_bad_payload_names_the_field_and_creates_no_run(registry, runner):
    @task(id="orders", registry=registry)
    async def process(payload: OrderIn) -> None:
        return None

    with pytest.raises(PayloadValidationError) as info:
        runner.trigger(process, {"order_id": "o-1", "amount": -5})
    assert info.value.errors[0][0] == "amount"
    assert "greater than 0" in str(info.value)
    assert runner.client.list_runs(RunQuery()) == []
    assert len(runner.queue) == 0


def test_missing_field_is_reported(registry, runner):
    @task(id="orders", registry=registry)
    async def process(payload: OrderIn) -> None:
        return None

    with pytest.raises(PayloadValidationError, match="order_id: Field required"):
        runner.trigger(process, {"amount": 1})


def test_plain_json_annotations_validate_too(registry, runner):
    @task(id="sum", registry=registry)
    async def total(payload: list[int]) -> int:
        return sum(payload)

    with pytest.raises(PayloadValidationError, match="1: Input should be a valid integer"):
        runner.trigger(total, [1, "x"])
    assert runner.run(total, [1, 2, 3]).output == 6


def test_task_receives_the_validated_model(registry, runner):
    @task(id="orders", registry=registry)
    async def process(payload: OrderIn) -> str:
        assert isinstance(payload, OrderIn)
        return payload.order_id

    assert runner.run(process, {"order_id": "o-9", "amount": "3"}).output == "o-9"


def test_output_not_matching_the_return_annotation_fails_the_run(registry, runner):
    @task(id="bad-output", registry=registry)
    async def wrong(payload: None) -> int:
        return "not a number"  # type: ignore[return-value]

    result = runner.run(wrong, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "invalid output" in result.error.message


def test_sync_task_function_is_rejected(registry):
    with pytest.raises(ConfigurationError, match="must be an async def"):

        @task(id="sync", registry=registry)
        def not_async(payload: None) -> None:  # type: ignore[arg-type]
            return None


def test_duplicate_task_id_for_another_function_is_rejected(registry):
    @task(id="same", registry=registry)
    async def first(payload: None) -> None:
        return None

    with pytest.raises(ConfigurationError, match="already used"):

        @task(id="same", registry=registry)
        async def second(payload: None) -> None:
            return None


def test_invalid_trigger_options_name_the_option(registry, runner):
    @task(id="t", registry=registry)
    async def t(payload: None) -> None:
        return None

    with pytest.raises(ConfigurationError, match="tags"):
        runner.trigger(t, None, tags=[f"t{i}" for i in range(11)])
    with pytest.raises(ConfigurationError, match="delay"):
        runner.trigger(t, None, delay=-1)
    assert runner.client.list_runs(RunQuery()) == []


def test_queue_rejects_bad_names_and_limits():
    with pytest.raises(ValueError, match=r"Queue\.name"):
        Queue("has spaces")
    with pytest.raises(ValueError, match="concurrency_limit"):
        Queue("q", concurrency_limit=0)


def test_idempotency_key_returns_the_first_run(registry, runner):
    @task(id="t", registry=registry)
    async def t(payload: int) -> int:
        return payload

    first = runner.trigger(t, 1, idempotency_key="k")
    second = runner.trigger(t, 2, idempotency_key="k")
    assert second.run_id == first.run_id
    assert second.cached
    assert not first.cached


PositiveInt = Annotated[int, Field(gt=0)]


def test_annotated_payload_constraints_hold(registry, runner):
    @task(id="annotated-in", registry=registry)
    async def take(payload: PositiveInt) -> int:
        return payload

    with pytest.raises(PayloadValidationError, match="greater than 0"):
        runner.trigger(take, -1)
    assert runner.client.list_runs(RunQuery()) == []
    assert runner.run(take, 3).output == 3


def test_annotated_output_constraints_hold(registry, runner):
    @task(id="annotated-out", registry=registry)
    async def give(payload: int) -> PositiveInt:
        return payload

    result = runner.run(give, -1)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "invalid output" in result.error.message
    assert "greater than 0" in result.error.message


def test_annotated_step_result_constraints_hold_before_the_result_is_recorded(registry, runner):
    calls: list[int] = []

    @step(retry=RetryPolicy(max_attempts=3, min_timeout=0, randomize=False))
    def count(n: int) -> PositiveInt:
        calls.append(n)
        return n

    @task(id="annotated-step", registry=registry)
    async def counting(payload: int) -> int:
        return await count(payload)

    result = runner.run(counting, -1)
    assert result.status is RunStatus.FAILED
    [entry] = runner.journal(result.run_id)
    assert entry.key == "count#0"
    assert entry.status is EntryStatus.FAILED  # never recorded as completed
    assert entry.result is None
    assert entry.error is not None
    assert "greater than 0" in entry.error.message
    assert calls == [-1]  # a result that breaks its annotation is not retried
    assert runner.run(counting, 2).output == 2


def test_annotated_ad_hoc_step_result_constraints_hold(registry, runner):
    def count(n: int) -> PositiveInt:
        return n

    @task(id="annotated-ad-hoc", registry=registry)
    async def counting(payload: int, ctx: TaskContext) -> int:
        return await ctx.step("count", count, payload)  # type: ignore[no-any-return]

    result = runner.run(counting, -1)
    assert result.status is RunStatus.FAILED
    [entry] = runner.journal(result.run_id)
    assert entry.status is EntryStatus.FAILED
    assert entry.error is not None
    assert "greater than 0" in entry.error.message
