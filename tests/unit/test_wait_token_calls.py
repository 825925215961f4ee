"""Wait token calls: argument checks, ids, URLs, sizes and where a token's deadline is kept."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from durable_lambda import TaskContext, step, tokens, wait
from durable_lambda.engine.token_ids import run_of_token
from durable_lambda.engine.token_secrets import callback_secret, secret_hash, secret_matches
from durable_lambda.engine.tokens import TokenStatus, token_id_for
from durable_lambda.errors import ConfigurationError, PayloadTooLarge, TokenTimeoutError
from durable_lambda.settings import Settings
from durable_lambda.task import TaskRegistry, task
from durable_lambda.testing import LocalRunner


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wait.create_token(timeout=-1), "timeout must be >= 0"),
        (lambda: wait.create_token(heartbeat_timeout=float("nan")), "heartbeat_timeout"),
        (lambda: wait.create_token(name="a/b"), "token name 'a/b'"),
        (lambda: wait.create_token(name="$x"), "token name '\\$x'"),
        (lambda: wait.for_token(""), "needs a Token or a token id"),
        (lambda: wait.for_callback("not callable"), "callable submitter"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_fail_at_the_call_not_at_the_await(call, message):
    with pytest.raises(ConfigurationError, match=message):
        call()


def test_token_calls_outside_a_task_say_so():
    coroutine = wait.create_token()
    with pytest.raises(ConfigurationError, match="inside a running task"):
        coroutine.send(None)


def test_token_ids_are_stable_url_safe_and_distinct_per_call():
    first = token_id_for("run_1", "approval#0")
    assert first == token_id_for("run_1", "approval#0")
    assert re.fullmatch(r"tok_[0-9a-f]{32}_run_1", first)
    assert run_of_token(first) == "run_1"  # where the stores keep it: beside its run
    assert (
        len({first, token_id_for("run_1", "approval#1"), token_id_for("run_2", "approval#0")}) == 3
    )


def _made_token(runner: LocalRunner, registry: TaskRegistry, **options: Any) -> dict[str, Any]:
    @task(id="maker", registry=registry)
    async def maker(payload: None) -> dict[str, Any]:
        token = await wait.create_token(**options)
        return {"id": token.id, "url": token.url}

    return runner.run(maker, None).output  # type: ignore[no-any-return]


def test_token_url_is_built_from_the_api_base_url_setting(registry):
    runner = LocalRunner(
        registry=registry, settings=Settings(api_base_url="https://api.example/v1/")
    )
    made = _made_token(runner, registry)
    assert made["url"] == f"https://api.example/v1/tokens/{made['id']}/complete"


def test_token_url_is_none_without_an_api_base_url(registry, runner):
    assert _made_token(runner, registry)["url"] is None


def test_a_token_has_a_callback_url_whose_secret_is_stored_only_as_a_hash(registry):
    runner = LocalRunner(registry=registry, settings=Settings(api_base_url="https://api.example/"))

    @task(id="calls-back", registry=registry)
    async def calls_back(payload: None) -> dict[str, Any]:
        token = await wait.create_token()
        return {"id": token.id, "path": token.callback_path, "url": token.callback_url}

    made = runner.run(calls_back, None).output
    path, secret = made["path"].split("?secret=")
    assert path == f"/callbacks/{made['id']}"
    assert made["url"] == f"https://api.example{made['path']}"
    assert len(secret) >= 43  # token_urlsafe(32): 256 random bits
    stored = tokens.retrieve(made["id"], client=runner.client)
    assert stored.secret_hashes == (secret_hash(secret),)
    assert secret not in repr(stored)
    assert secret_matches(stored, secret)


def test_a_callback_url_is_none_without_an_api_base_url_but_the_path_is_given(registry, runner):
    @task(id="no-base", registry=registry)
    async def no_base(payload: None) -> list[Any]:
        token = await wait.create_token()
        return [token.callback_path, token.callback_url]

    path, url = runner.run(no_base, None).output
    assert path.startswith("/callbacks/tok_")
    assert url is None


def test_a_replayed_create_hands_back_the_same_callback_url(registry, runner):
    @step
    def hand_out(path: str | None) -> str | None:
        return path

    @task(id="replayed", registry=registry)
    async def replayed(payload: None) -> list[Any]:
        token = await wait.create_token()
        sent = await hand_out(token.callback_path)
        await wait.for_(hours=1)  # a new invocation: the create is replayed
        return [sent, token.callback_path]

    result = runner.run(replayed, None)
    assert runner.invocations[result.run_id] >= 2
    sent, replayed_path = result.output
    assert sent is not None
    assert replayed_path == sent


def test_a_run_cannot_wait_on_another_runs_token(registry, runner):
    @task(id="other", registry=registry)
    async def other(payload: str) -> Any:
        return await wait.for_token(payload)

    foreign = _made_token(runner, registry)["id"]
    result = runner.run(other, foreign)
    assert result.error is not None
    assert "only the run that created a token can wait for it" in result.error.message


def _blocked(runner: LocalRunner, registry: TaskRegistry, **options: Any) -> tuple[str, str]:
    @task(id="waiter", registry=registry)
    async def waiter(payload: None) -> Any:
        return await wait.for_token(await wait.create_token(**options))

    handle = runner.start(waiter, None)
    (pending,) = runner.pending_tokens(handle.run_id)
    return handle.run_id, pending.token_id


def test_large_completion_data_reaches_the_run_through_the_blob_store(registry):
    settings = Settings(inline_limit=1024, max_value_bytes=64 * 1024)
    runner = LocalRunner(registry=registry, settings=settings)
    _, token_id = _blocked(runner, registry)
    data = {"text": "x" * 10_000}
    result = runner.complete_token(token_id, data)
    assert result is not None
    assert result.output == data
    assert runner.client.retrieve_token(token_id).value() == data


def test_completion_data_above_the_maximum_is_refused_and_changes_nothing(registry):
    runner = LocalRunner(registry=registry, settings=Settings(max_value_bytes=128 * 1024))
    run_id, token_id = _blocked(runner, registry)
    with pytest.raises(
        PayloadTooLarge, match=rf"token '{token_id}' data is \d+ bytes, above the maximum of 131072"
    ):
        runner.complete_token(token_id, "y" * 200_000)
    assert runner.client.retrieve_token(token_id).status is TokenStatus.PENDING
    assert runner.result(run_id) is None


def test_a_long_deadline_goes_to_the_timer_index_and_a_short_one_to_the_queue_delay(
    registry, runner
):
    long_run, long_token = _blocked(runner, registry, timeout=dt.timedelta(days=2))
    timeout_at = runner.client.retrieve_token(long_token).timeout_at
    record = runner.client.get_run(long_run)
    assert record.waiting_children  # a completion's nudge may take it at once
    far = runner.clock.now() + dt.timedelta(days=30)
    # The recheck (six hours) comes first; beyond SQS's 15 minutes: a timer.
    assert record.wake_at is not None
    assert timeout_at is not None
    assert record.wake_at < timeout_at
    assert [t.run_id for t in runner.store.due_timers(far)] == [long_run]
    short_run, _ = _blocked(runner, registry, timeout=600)
    short = runner.client.get_run(short_run)
    assert short.wake_at is not None
    assert [t.run_id for t in runner.store.due_timers(far)] == [long_run]  # no timer for it


def test_the_tokens_module_uses_the_default_client_when_given_none(registry, runner, monkeypatch):
    run_id, token_id = _blocked(runner, registry)
    monkeypatch.setattr(tokens, "default_client", lambda: runner.client)
    assert tokens.retrieve(token_id).status is TokenStatus.PENDING
    assert tokens.heartbeat(token_id).token_id == token_id
    tokens.complete(token_id, {"ok": 1})
    runner.drain()
    result = runner.result(run_id)
    assert result is not None
    assert result.output == {"ok": 1}


def test_a_zero_timeout_times_out_at_once_without_suspending(registry, runner):
    @task(id="instant", registry=registry)
    async def instant(payload: None) -> str:
        try:
            await wait.for_token(await wait.create_token(timeout=0))
        except TokenTimeoutError as exc:
            return exc.reason
        return "completed?"

    result = runner.run(instant, None)
    assert result.output == "timeout"
    assert runner.invocations[result.run_id] == 1


def test_parallel_branches_each_wait_on_their_own_token(registry, runner):
    async def approve(ctx: TaskContext, name: str) -> Any:
        return await wait.for_token(await wait.create_token(name=name))

    @task(id="both", registry=registry)
    async def both(payload: None, ctx: TaskContext) -> list[Any]:
        batch = await ctx.parallel(
            {"legal": lambda c: approve(c, "legal"), "finance": lambda c: approve(c, "finance")}
        )
        return batch.results()

    handle = runner.start(both, None)
    pending = {t.name: t.token_id for t in runner.pending_tokens(handle.run_id)}
    assert set(pending) == {"legal", "finance"}
    assert runner.complete_token(pending["finance"], "F") is None
    assert runner.pending_tokens(handle.run_id)[0].name == "legal"
    result = runner.complete_token(pending["legal"], "L")
    assert result is not None
    assert result.output == ["L", "F"]


def test_a_replay_derives_the_same_callback_url_and_the_journal_keeps_no_secret(
    registry: TaskRegistry, runner: LocalRunner
):
    paths: list[str] = []

    @task(id="derived-secret", registry=registry)
    async def derived(payload: None) -> Any:
        token = await wait.create_token(timeout=600)
        assert token.callback_path is not None
        paths.append(token.callback_path)  # the body runs again on every invocation
        await wait.for_(minutes=5)  # a second invocation replays the create
        return await wait.for_token(token)

    handle = runner.start(derived, None)
    (pending,) = runner.pending_tokens(handle.run_id)
    runner.complete_token(pending.token_id, "ok")

    assert runner.result(handle.run_id).output == "ok"  # type: ignore[union-attr]
    assert len(paths) >= 2
    assert len(set(paths)) == 1
    secret = paths[0].split("?secret=")[1]
    assert len(secret) >= 43  # 256 bits, URL-safe base64
    assert secret == callback_secret(runner.worker.callback_key, pending.token_id)
    assert callback_secret(b"another key", pending.token_id) != secret
    journal = json.dumps([e.result for e in runner.journal(handle.run_id)])
    assert secret not in journal
    assert secret_hash(secret) in pending.secret_hashes  # the token keeps only its hash
