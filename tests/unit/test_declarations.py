"""Declaration checks fail at import time with a ConfigurationError naming the problem."""

from __future__ import annotations

import pytest

from durable_lambda import (
    ConfigurationError,
    Queue,
    RateLimit,
    RetryPolicy,
    TerminalError,
    task,
)
from durable_lambda.task import default_registry


def test_configuration_error_is_terminal_and_a_value_error():
    assert issubclass(ConfigurationError, TerminalError)
    assert issubclass(ConfigurationError, ValueError)


@pytest.mark.parametrize(
    ("declare", "named"),
    [
        (lambda: RetryPolicy(max_attempts=0), "max_attempts"),
        (lambda: RetryPolicy(factor=0.5), "factor"),
        (lambda: RetryPolicy(min_timeout=-1), "min_timeout"),
        (lambda: RetryPolicy(min_timeout=5, max_timeout=1), "max_timeout"),
        (lambda: Queue("no spaces"), "Queue.name"),
        (lambda: Queue("q", concurrency_limit=0), "concurrency_limit"),
        (lambda: RateLimit(0, 10), "RateLimit.limit"),
        (lambda: RateLimit(1, 0), "RateLimit.period"),
    ],
)
def test_invalid_declarations_raise_configuration_error(declare, named):
    with pytest.raises(ConfigurationError, match=named):
        declare()


@pytest.mark.parametrize(
    "bad_id",
    ["", "a" * 129, "two words", "tab\there", "line\nbreak", "hash#key", "nul\x00", "bell\x07"],
)
def test_task_ids_outside_the_allowed_alphabet_are_rejected_at_decoration(registry, bad_id):
    with pytest.raises(ConfigurationError, match="task id"):

        @task(id=bad_id, registry=registry)
        async def body(payload: int) -> int:
            return payload

    assert registry.ids() == []


def test_task_ids_of_letters_digits_and_punctuation_are_accepted(registry):
    @task(id="Billing.v2:charge_card-1", registry=registry)
    async def body(payload: int) -> int:
        return payload

    assert registry.ids() == ["Billing.v2:charge_card-1"]


def test_task_takes_its_registry_as_registry(registry):
    @task(id="isolated", registry=registry)
    async def body(payload: int) -> int:
        return payload

    assert registry.get("isolated") is body
    assert "isolated" not in default_registry.ids()
