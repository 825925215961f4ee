"""A run's timeline shows its wait tokens: created, resolved, how, and how long they took."""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable_lambda import task, wait
from durable_lambda.engine.token_secrets import callback_secret, secret_matches
from durable_lambda.errors import TokenTimeoutError
from durable_lambda.runs import Runs
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner
from durable_lambda.views import RunDetail, TimelineEntry


@pytest.fixture
def runner() -> LocalRunner:
    registry = TaskRegistry()

    @task(id="approval", registry=registry)
    async def approval(payload: None) -> Any:
        token = await wait.create_token(name="review", timeout=3600)
        try:
            return await wait.for_token(token)
        except TokenTimeoutError as exc:
            return {"timed_out": exc.reason}

    return LocalRunner(registry=registry)


def _detail(runner: LocalRunner, run_id: str) -> RunDetail:
    return Runs(runner.store, tokens=runner.client.tokens).retrieve(run_id)


def _line(detail: RunDetail, kind: str) -> TimelineEntry:
    (line,) = [line for line in detail.timeline if line.kind == kind]
    return line


def test_a_pending_token_shows_in_the_timeline_with_its_id(runner: LocalRunner):
    handle = runner.start("approval", None)
    (pending,) = runner.pending_tokens(handle.run_id)
    detail = _detail(runner, handle.run_id)
    created = _line(detail, "token")
    assert (created.name, created.token_id, created.token_status) == (
        "review",
        pending.token_id,
        "PENDING",
    )
    assert created.started_at == pending.created_at
    assert (created.ended_at, created.duration_ms) == (None, None)
    waiting = _line(detail, "token_wait")
    assert (waiting.status, waiting.token_id) == ("WAITING", pending.token_id)


def test_a_resolved_token_shows_when_and_how_and_its_duration(runner: LocalRunner):
    handle = runner.start("approval", None)
    (pending,) = runner.pending_tokens(handle.run_id)
    runner.advance(90)
    runner.complete_token(pending.token_id, {"ok": True})
    detail = _detail(runner, handle.run_id)
    created = _line(detail, "token")
    token = runner.client.retrieve_token(pending.token_id)
    assert token.resolved_at is not None
    assert (created.token_status, created.ended_at) == ("COMPLETED", token.resolved_at)
    spent = (token.resolved_at - token.created_at).total_seconds() * 1000
    assert created.duration_ms == pytest.approx(spent)
    assert created.duration_ms >= 90_000  # the clock was moved 90 s before the completion
    waited = _line(detail, "token_wait")
    assert (waited.status, waited.token_id, waited.token_status) == (
        "COMPLETED",
        pending.token_id,
        "COMPLETED",
    )
    assert waited.ended_at is not None


def test_a_timed_out_token_says_why(runner: LocalRunner):
    handle = runner.start("approval", None)
    runner.advance(3601)
    detail = _detail(runner, handle.run_id)
    assert detail.output is not None
    assert detail.output.value == {"timed_out": "timeout"}
    for kind in ("token", "token_wait"):
        line = _line(detail, kind)
        assert (line.token_status, line.detail) == ("TIMED_OUT", "timeout"), kind


def test_the_timeline_never_shows_a_token_secret_or_its_data(runner: LocalRunner):
    handle = runner.start("approval", None)
    (pending,) = runner.pending_tokens(handle.run_id)
    runner.complete_token(pending.token_id, {"private": "approved-by-alice"})
    (entry,) = [e for e in runner.journal(handle.run_id) if e.kind.value == "TOKEN"]
    assert entry.result is not None
    assert '"secret"' not in entry.result  # derived from the worker's key, stored nowhere
    text = json.dumps(
        [line.model_dump(mode="json") for line in _detail(runner, handle.run_id).timeline]
    )
    secret = callback_secret(runner.worker.callback_key, pending.token_id)
    assert secret_matches(pending, secret)
    assert secret not in text
    assert "approved-by-alice" not in text


def test_without_a_token_store_the_timeline_shows_what_the_journal_knows(runner: LocalRunner):
    handle = runner.start("approval", None)
    (pending,) = runner.pending_tokens(handle.run_id)
    runner.complete_token(pending.token_id, 1)
    detail = Runs(runner.store).retrieve(handle.run_id)
    created = _line(detail, "token")
    assert (created.token_id, created.token_status) == (pending.token_id, "COMPLETED")
