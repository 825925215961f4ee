from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_lambda import AbortRun, RetryAfter, RetryPolicy
from durable_lambda.errors import ConfigurationError, NonDeterminismError


def test_backoff_is_exponential_and_capped_without_jitter():
    policy = RetryPolicy(
        max_attempts=10, factor=2.0, min_timeout=1, max_timeout=60, randomize=False
    )
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_factor_and_min_timeout_scale_the_delay():
    policy = RetryPolicy(factor=3.0, min_timeout=0.5, max_timeout=100, randomize=False)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]


@given(
    attempt=st.integers(min_value=1, max_value=30), seed=st.integers(min_value=0, max_value=10_000)
)
def test_full_jitter_stays_between_min_and_the_exponential_ceiling(attempt, seed):
    policy = RetryPolicy(max_attempts=50, factor=2.0, min_timeout=1, max_timeout=60, randomize=True)
    ceiling = min(60, 2 ** (attempt - 1))
    delay = policy.backoff(attempt, random.Random(seed))
    assert 1 <= delay <= ceiling


def test_jitter_spreads_delays():
    policy = RetryPolicy(min_timeout=1, max_timeout=60, randomize=True)
    rng = random.Random(1)
    delays = {round(policy.backoff(6, rng), 3) for _ in range(50)}
    assert len(delays) > 40


def test_decide_stops_after_max_attempts():
    policy = RetryPolicy(max_attempts=3, randomize=False)
    assert policy.decide(1, RuntimeError()).retry
    assert policy.decide(2, RuntimeError()).retry
    last = policy.decide(3, RuntimeError())
    assert not last.retry
    assert "attempt 3 of 3" in last.reason


def test_terminal_errors_are_never_retried():
    policy = RetryPolicy(max_attempts=5)
    assert not policy.decide(1, AbortRun("no")).retry
    assert not policy.decide(1, NonDeterminismError(0, "a#0", "b#0")).retry


def test_retry_after_overrides_the_backoff_but_counts_as_an_attempt():
    policy = RetryPolicy(max_attempts=2)
    decision = policy.decide(1, RetryAfter(30))
    assert decision.retry
    assert decision.delay == 30
    assert not policy.decide(2, RetryAfter(30)).retry


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"factor": 0.5}, "factor"),
        ({"min_timeout": -1}, "min_timeout"),
        ({"min_timeout": 10, "max_timeout": 5}, "max_timeout"),
    ],
)
def test_invalid_policies_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**kwargs)


def test_retry_after_rejects_negative_delays():
    with pytest.raises(ValueError, match=">= 0"):
        RetryAfter(-1)


class TransientError(Exception):
    pass


def test_retry_on_types_retries_only_those_errors():
    policy = RetryPolicy(max_attempts=5, retry_on=(TransientError,), randomize=False)
    assert policy.decide(1, TransientError()).retry
    outside = policy.decide(1, KeyError("sku"))
    assert not outside.retry
    assert "KeyError is not in retry_on" in outside.reason


def test_retry_on_predicate_decides_per_error():
    policy = RetryPolicy(max_attempts=5, retry_on=lambda exc: "429" in str(exc))
    assert policy.decide(1, RuntimeError("HTTP 429")).retry
    assert not policy.decide(1, RuntimeError("HTTP 400")).retry


def test_retry_on_does_not_override_max_attempts_or_retry_after():
    policy = RetryPolicy(max_attempts=2, retry_on=(TransientError,))
    assert not policy.decide(2, TransientError()).retry
    assert policy.decide(1, RetryAfter(5)).retry


@pytest.mark.parametrize(
    ("retry_on", "message"),
    [
        ((), "at least one exception type"),
        ((TransientError, "ValueError"), "must hold exception types"),
        (TransientError, "tuple of exception types or a predicate"),
        ("TransientError", "tuple of exception types or a predicate"),
        (lambda: True, "must take one argument"),
    ],
)
def test_a_malformed_retry_on_is_refused_at_declaration(retry_on, message):
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(retry_on=retry_on)
