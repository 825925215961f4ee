"""Wait tokens end to end with LocalRunner, on the memory store and on DynamoDB (moto)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from contract_backends import Backend
from pydantic import BaseModel

from durable_lambda import RetryPolicy, TaskContext, step, task, tokens, wait
from durable_lambda.engine.journal import EntryKind
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.token_secrets import secret_matches
from durable_lambda.engine.tokens import Resolution, TokenInfo, TokenStatus
from durable_lambda.errors import (
    StepFailedError,
    TokenAlreadyResolvedError,
    TokenFailedError,
    TokenNotFoundError,
    TokenTimeoutError,
)
from durable_lambda.ports import TokenStore
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner, RunnerStalledError
from durable_lambda.worker import Invocation, Report

HOUR = 3600.0


class Approval(BaseModel):
    approved: bool
    by: str


class HookedTokens:
    """The backend's token store, with a hook run once right after the run reads a token."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner
        self.after_read: Callable[[TokenInfo], None] | None = None
        self.after_create: Callable[[TokenInfo], None] | None = None
        self.reads = 0

    def create(self, token: TokenInfo) -> TokenInfo:
        created = self.inner.create(token)
        hook, self.after_create = self.after_create, None
        if hook is not None:
            hook(created)
        return created

    def get(self, token_id: str) -> TokenInfo | None:
        self.reads += 1
        got = self.inner.get(token_id)
        hook, self.after_read = self.after_read, None
        if hook is not None and got is not None:
            hook(got)
        return got

    def resolve(self, token_id: str, resolution: Resolution, now: dt.datetime) -> TokenInfo:
        return self.inner.resolve(token_id, resolution, now)

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        return self.inner.expire(token, now)

    def heartbeat(self, token_id: str, now: dt.datetime) -> TokenInfo:
        return self.inner.heartbeat(token_id, now)


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def hooked(backend: Backend) -> HookedTokens:
    assert backend.tokens is not None
    return HookedTokens(backend.tokens)


@pytest.fixture
def runner(backend: Backend, registry: TaskRegistry, hooked: HookedTokens) -> LocalRunner:
    return LocalRunner(registry=registry, store=backend.store, flow=backend.flow, tokens=hooked)


def _approval_task(registry: TaskRegistry, **token_options: Any) -> Any:
    @task(id="approve", registry=registry)
    async def approve(payload: dict) -> dict:
        token = await wait.create_token(name="approval", **token_options)
        try:
            data = await wait.for_token(token, result_type=Approval)
        except TokenTimeoutError as exc:
            return {"timed_out": exc.reason}
        except TokenFailedError as exc:
            return {"failed": [exc.error_type, exc.message]}
        return {"approved": data.approved, "by": data.by}

    return approve


def _executed(runner: LocalRunner, run_id: str) -> int:
    return sum(r.run_id == run_id and r.action is Action.EXECUTED for r in runner.reports)


def test_a_waiting_run_costs_no_invocation_and_gets_the_completion_data(runner, registry):
    approve = _approval_task(registry, timeout=dt.timedelta(days=2))
    handle = runner.start(approve, {})
    assert runner.result(handle.run_id) is None
    (pending,) = runner.pending_tokens(handle.run_id)
    assert pending.name == "approval"
    assert pending.timeout_at == pending.created_at + dt.timedelta(days=2)
    assert pending.heartbeat_at is None
    runner.advance(5 * HOUR)  # hours of waiting: no invocation, no Lambda time
    assert _executed(runner, handle.run_id) == 1
    result = runner.complete_token(pending.token_id, Approval(approved=True, by="ana"))
    assert result is not None
    assert result.output == {"approved": True, "by": "ana"}
    assert _executed(runner, handle.run_id) == 2
    info = runner.client.retrieve_token(pending.token_id)
    assert (info.status, info.run_id, info.value()) == (
        TokenStatus.COMPLETED,
        handle.run_id,
        {"approved": True, "by": "ana"},
    )


def test_a_token_wait_reads_the_token_neither_after_its_create_nor_once_woken(
    runner, registry, hooked
):
    approve = _approval_task(registry, timeout=dt.timedelta(days=2))
    handle = runner.start(approve, {})
    assert hooked.reads == 0
    (pending,) = runner.pending_tokens(handle.run_id)
    reads = hooked.reads
    result = runner.complete_token(pending.token_id, {"approved": True, "by": "ana"})
    assert result is not None
    # The woken invocation finds the completion with its journal, in the same read.
    assert hooked.reads == reads


def test_a_completion_whose_nudge_was_lost_is_found_at_the_recheck_time(runner, registry, hooked):
    approve = _approval_task(registry, timeout=dt.timedelta(days=2))
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)
    # The completer died between its write and its nudge: only the write happened.
    hooked.resolve(
        pending.token_id,
        Resolution(TokenStatus.COMPLETED, data='{"approved":true,"by":"quiet"}'),
        runner.clock.now(),
    )
    runner.drain()
    assert runner.result(handle.run_id) is None
    runner.advance(runner.settings.token_recheck_seconds)
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"approved": True, "by": "quiet"}


def test_a_failed_token_raises_token_failed_error_in_the_task(runner, registry):
    approve = _approval_task(registry)
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)
    result = runner.fail_token(pending.token_id, "Rejected", "missing invoice")
    assert result is not None
    assert result.output == {"failed": ["Rejected", "missing invoice"]}


def test_an_uncaught_token_failure_fails_the_run_with_that_error(runner, registry):
    @task(id="strict", registry=registry)
    async def strict(payload: None) -> Any:
        return await wait.for_token(await wait.create_token())

    handle = runner.start(strict, None)
    (pending,) = runner.pending_tokens(handle.run_id)
    result = runner.fail_token(pending.token_id, "Rejected", "no")
    assert result is not None
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("TokenFailedError")
    assert "Rejected: no" in result.error.message
    assert _executed(runner, handle.run_id) == 2  # terminal: the task's retries do not re-run it


def test_no_completion_by_the_timeout_raises_token_timeout_error_only_when_advanced(
    runner, registry
):
    approve = _approval_task(registry, timeout=3600)
    handle = runner.start(approve, {})
    runner.advance(3599)
    assert runner.result(handle.run_id) is None
    runner.advance(2)
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"timed_out": "timeout"}
    (token_id,) = _token_ids(runner, handle.run_id)
    with pytest.raises(TokenAlreadyResolvedError, match="TIMED_OUT"):
        runner.client.complete_token(token_id, {"approved": True, "by": "late"})
    assert runner.client.retrieve_token(token_id).status is TokenStatus.TIMED_OUT


def test_each_heartbeat_pushes_the_heartbeat_deadline_out(runner, registry):
    approve = _approval_task(registry, heartbeat_timeout=60)
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)
    for _ in range(3):
        runner.advance(50)
        beat = runner.heartbeat_token(pending.token_id)
        assert beat.heartbeat_at == beat.last_heartbeat_at + dt.timedelta(seconds=60)
    runner.advance(50)
    assert runner.result(handle.run_id) is None  # 200 s since creation, 50 since the last beat
    (still,) = runner.pending_tokens(handle.run_id)
    assert still.heartbeat_at == beat.heartbeat_at
    runner.advance(11)
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"timed_out": "heartbeat"}


def test_completing_twice_changes_nothing_and_names_the_state(runner, registry):
    approve = _approval_task(registry)
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)
    runner.complete_token(pending.token_id, {"approved": True, "by": "ana"})
    before = runner.client.retrieve_token(pending.token_id)
    with pytest.raises(TokenAlreadyResolvedError, match="COMPLETED") as raised:
        runner.client.complete_token(pending.token_id, {"approved": False, "by": "bob"})
    assert raised.value.state == "COMPLETED"
    with pytest.raises(TokenAlreadyResolvedError, match="COMPLETED"):
        runner.client.fail_token(pending.token_id, "Rejected", "late")
    assert runner.client.retrieve_token(pending.token_id) == before
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"approved": True, "by": "ana"}


def test_a_token_completed_before_for_token_returns_at_once(runner, registry):
    client = runner.client

    @step
    def hand_out(token_id: str) -> None:
        client.complete_token(token_id, {"approved": True, "by": "fast"})

    @task(id="early", registry=registry)
    async def early(payload: None) -> dict:
        token = await wait.create_token(timeout=60)
        await hand_out(token.id)
        return await wait.for_token(token)

    result = runner.run(early, None)
    assert result.output == {"approved": True, "by": "fast"}
    assert _executed(runner, result.run_id) == 1  # never suspended


@pytest.mark.parametrize("awaited", [("a", "b"), ("b", "a")])
def test_two_tokens_are_awaited_in_either_order(runner, registry, awaited):
    @task(id="two", registry=registry)
    async def two(payload: None) -> list[Any]:
        made = {"a": await wait.create_token(name="a"), "b": await wait.create_token(name="b")}
        return [await wait.for_token(made[name]) for name in awaited]

    handle = runner.start(two, None)
    by_name = {t.name: t.token_id for t in runner.pending_tokens(handle.run_id)}
    assert set(by_name) == {"a", "b"}
    assert runner.complete_token(by_name["b"], "B") is None  # completed in the other order
    result = runner.complete_token(by_name["a"], "A")
    assert result is not None
    assert result.output == [name.upper() for name in awaited]


def test_an_unknown_token_id_is_token_not_found(runner, registry):
    @task(id="lost", registry=registry)
    async def lost(payload: None) -> Any:
        return await wait.for_token("tok_does_not_exist")

    result = runner.run(lost, None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.type.endswith("TokenNotFoundError")
    assert "tok_does_not_exist" in result.error.message
    with pytest.raises(TokenNotFoundError, match="tok_does_not_exist"):
        runner.client.complete_token("tok_does_not_exist", 1)
    with pytest.raises(TokenNotFoundError):
        tokens.retrieve("tok_does_not_exist", client=runner.client)


@pytest.mark.parametrize("winner", ["complete", "fail"])
def test_a_completion_and_a_failure_racing_resolve_once_and_the_run_sees_the_winner(
    runner, registry, backend, winner
):
    approve = _approval_task(registry)
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)
    actions = {
        "complete": lambda: runner.client.complete_token(
            pending.token_id, {"approved": True, "by": "ana"}
        ),
        "fail": lambda: runner.client.fail_token(pending.token_id, "Rejected", "no"),
    }
    loser = "fail" if winner == "complete" else "complete"
    # The loser's write is on its way when the winner's lands.
    _while_in_flight(backend, actions[winner])
    with pytest.raises(TokenAlreadyResolvedError):
        actions[loser]()
    runner.drain()
    result = runner.result(handle.run_id)
    assert result is not None
    expected = (
        {"approved": True, "by": "ana"} if winner == "complete" else {"failed": ["Rejected", "no"]}
    )
    assert result.output == expected


def test_a_completion_while_the_run_is_still_running_wakes_it(runner, registry, hooked):
    """The nudge race: the token is completed after its create, before the run suspended.

    A for_token right after its create_token does not read the token; this
    race is what makes that safe.
    """
    approve = _approval_task(registry, timeout=dt.timedelta(days=2))

    busy: list[Report] = []

    def complete_now(token: TokenInfo) -> None:
        runner.client.complete_token(token.token_id, {"approved": True, "by": "racer"})
        # Another worker receives the nudge at once, while this run still runs.
        (nudge,) = runner.queue.receive(runner.clock.now(), max_messages=1)
        assert nudge == ResumeMessage(token.run_id, ANY_EPOCH)
        busy.append(runner.worker.handle(nudge, Invocation("other-worker", lambda: 900.0, 900.0)))

    hooked.after_create = complete_now
    handle = runner.start(approve, {})
    assert [(r.action, r.detail) for r in busy] == [(Action.BUSY, "nudge: parent running")]
    # No advance(): had the nudge been lost the run would block until its timeout.
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"approved": True, "by": "racer"}
    assert _executed(runner, handle.run_id) == 2


def test_a_completion_landing_while_the_timeout_fires_wins_whole(runner, registry, hooked):
    approve = _approval_task(registry, timeout=600)
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)

    def complete_now(token: TokenInfo) -> None:
        runner.client.complete_token(token.token_id, {"approved": True, "by": "just in time"})

    hooked.after_read = complete_now  # the run reads it pending and past its timeout...
    runner.advance(601)  # ...then the completion lands before the run's TIMED_OUT write
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"approved": True, "by": "just in time"}
    assert runner.client.retrieve_token(pending.token_id).status is TokenStatus.COMPLETED


def test_for_callback_submitter_failing_after_its_retries_fails_the_wait(runner, registry):
    calls: list[str] = []

    def submit(token: Any) -> None:
        calls.append(token.id)
        raise ConnectionError("webhook down")

    @task(id="callback-fails", registry=registry)
    async def callback(payload: None) -> str:
        try:
            await wait.for_callback(submit, timeout=60, retry=RetryPolicy(max_attempts=2))
        except StepFailedError as exc:
            return f"{exc.step}: {exc.error_type}: {exc.error_message}"
        return "completed?"

    result = runner.run(callback, None)
    assert result.output == "$submit#0: ConnectionError: webhook down"
    assert len(calls) == 2
    assert len(set(calls)) == 1  # both attempts handed out the same token


def test_for_callback_does_not_run_a_succeeded_submitter_again_on_replay(runner, registry, hooked):
    calls: list[str] = []

    async def submit(token: Any) -> None:
        calls.append(token.id)

    @task(id="callback", registry=registry)
    async def callback(payload: None, ctx: TaskContext) -> Any:
        data = await wait.for_callback(submit, name="approval", result_type=Approval)
        await wait.for_(hours=1)  # one more replay after the wait
        return data.by

    handle = runner.start(callback, None)
    (pending,) = runner.pending_tokens(handle.run_id)
    assert calls == [pending.token_id]
    reads = hooked.reads
    result = runner.complete_token(pending.token_id, {"approved": True, "by": "ana"})
    assert result is not None
    assert result.output == "ana"
    assert _executed(runner, handle.run_id) == 3
    assert calls == [pending.token_id]
    # The woken invocation finds it completed with its journal; the replay after
    # the 1-hour wait reads nothing either.
    assert hooked.reads == reads
    keys = [e.key for e in runner.journal(handle.run_id) if e.kind is not EntryKind.WAIT]
    assert keys == ["approval#0", "approval.submit#0", "$for_token#0"]


def test_a_create_re_executed_after_a_killed_invocation_finds_the_same_token(
    backend, registry, hooked
):
    runner = LocalRunner(
        registry=registry, store=backend.store, flow=backend.flow, tokens=hooked, deadline=1.0
    )
    attempts: list[int] = []

    @step
    def slow_first_time() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(1.2)  # killed at the deadline: the create's record is lost with it

    @task(id="killed", registry=registry)
    async def killed(payload: None) -> Any:
        token = await wait.create_token(timeout=60)
        await slow_first_time()
        return await wait.for_token(token)

    handle = runner.start(killed, None)
    assert next(r.action for r in runner.reports if r.run_id == handle.run_id) is Action.KILLED
    (pending,) = runner.pending_tokens(handle.run_id)
    assert len(attempts) == 2
    result = runner.complete_token(pending.token_id, "done")
    assert result is not None
    assert result.output == "done"


def test_the_callback_url_handed_out_before_a_kill_is_the_one_the_re_executed_create_gives(
    backend, registry, hooked
):
    runner = LocalRunner(
        registry=registry, store=backend.store, flow=backend.flow, tokens=hooked, deadline=1.0
    )
    handed_out: list[str] = []

    @step
    def send_link(path: str) -> None:
        handed_out.append(path)  # the webhook provider has the link from here on
        if len(handed_out) == 1:
            time.sleep(1.2)  # killed at the deadline: the create's record is lost with it

    @task(id="linked", registry=registry)
    async def linked(payload: None) -> Any:
        token = await wait.create_token(timeout=60)
        assert token.callback_path is not None
        await send_link(token.callback_path)
        return await wait.for_token(token)

    handle = runner.start(linked, None)
    assert next(r.action for r in runner.reports if r.run_id == handle.run_id) is Action.KILLED
    first, second = handed_out
    assert first == second  # derived from the token id and the worker's key, not drawn
    (pending,) = runner.pending_tokens(handle.run_id)
    stored = hooked.get(pending.token_id)
    assert stored is not None
    assert first.startswith(f"/callbacks/{pending.token_id}?secret=")
    assert secret_matches(stored, first.split("?secret=")[1])


def test_run_on_a_run_blocked_on_a_token_names_the_token(runner, registry):
    approve = _approval_task(registry)
    with pytest.raises(RunnerStalledError, match=r"blocked on wait tokens tok_\w+ \(approval\)"):
        runner.run(approve, {})


def _token_ids(runner: LocalRunner, run_id: str) -> list[str]:
    return [
        runner.client.retrieve_token(json_id).token_id
        for json_id in (
            __import__("json").loads(e.result or "{}")["id"]
            for e in runner.journal(run_id)
            if e.kind is EntryKind.TOKEN
        )
    ]


def _while_in_flight(backend: Backend, action: Callable[[], object]) -> None:
    """Run ``action`` once while the next token write is on its way (memory: first)."""
    if backend.name == "memory":
        action()
        return
    client = backend.extra["ports"].tokens.client
    fired: list[bool] = []

    def hook(**_: object) -> None:
        if not fired:
            fired.append(True)
            action()

    client.meta.events.register_first("before-send.dynamodb.UpdateItem", hook)


class HookedHistories:
    """The backend's run store, with a hook run once right after a run's history is read."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.after_history: Callable[[str], None] | None = None

    def load_history(self, run_id: str) -> Any:
        history = self.inner.load_history(run_id)
        hook, self.after_history = self.after_history, None
        if hook is not None:
            hook(run_id)
        return history

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_completion_landing_after_the_history_read_is_seen_by_the_wait(backend, registry, hooked):
    """A token pending when the history was read is read again: its completion since counts."""
    store = HookedHistories(backend.store)
    runner = LocalRunner(registry=registry, store=store, flow=backend.flow, tokens=hooked)
    approve = _approval_task(registry)  # no deadline: woken at the recheck time
    handle = runner.start(approve, {})
    (pending,) = runner.pending_tokens(handle.run_id)

    def complete_now(run_id: str) -> None:
        runner.client.complete_token(pending.token_id, {"approved": True, "by": "between"})

    store.after_history = complete_now  # the history has it pending; the wait must not
    runner.advance(runner.settings.token_recheck_seconds)
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.output == {"approved": True, "by": "between"}
    # The recheck's invocation saw the completion: no third invocation, woken by its nudge.
    assert _executed(runner, handle.run_id) == 2
