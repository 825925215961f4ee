"""The token store's contract: created once, resolved once, timed out only past a deadline."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest
from contract_backends import Backend, at
from faults import Fault

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.token_ids import token_id_for
from durable_lambda.engine.token_secrets import secret_hash, secret_matches
from durable_lambda.engine.tokens import Resolution, TokenInfo, TokenStatus
from durable_lambda.errors import PayloadTooLarge, TokenAlreadyResolvedError, TokenNotFoundError
from durable_lambda.ports import TokenStore
from durable_lambda.testing.aws_counter import RequestCounter


def _tokens(backend: Backend) -> TokenStore:
    assert backend.tokens is not None
    return backend.tokens


def _token(token_id: str = "tok_a", **changes: object) -> TokenInfo:  # noqa: S107 - a fake id
    fields: dict[str, object] = {
        "token_id": token_id,
        "run_id": "run_1",
        "status": TokenStatus.PENDING,
        "created_at": at(0),
        "name": "approval",
        "timeout_at": at(100),
        "tags": ("a", "b"),
    }
    fields.update(changes)
    return TokenInfo(**fields)  # type: ignore[arg-type]


COMPLETED = Resolution(TokenStatus.COMPLETED, data='{"ok":true}')
FAILED = Resolution(TokenStatus.FAILED, error=ErrorInfo("Rejected", "no"))


def test_a_token_round_trips_and_a_second_create_returns_the_first(backend: Backend):
    tokens = _tokens(backend)
    first = _token(heartbeat_timeout=30.0)
    assert tokens.create(first) == first
    again = tokens.create(_token(created_at=at(5), timeout_at=at(500), heartbeat_timeout=30.0))
    assert again == tokens.get("tok_a")
    assert again.timeout_at == at(100)  # the first create's deadlines stand
    assert again.heartbeat_at == at(30)
    assert tokens.get("tok_missing") is None


def test_a_completion_resolves_once_and_a_second_raises_naming_the_state(backend: Backend):
    tokens = _tokens(backend)
    tokens.create(_token())
    done = tokens.resolve("tok_a", COMPLETED, at(10))
    assert (done.status, done.data, done.resolved_at) == (
        TokenStatus.COMPLETED,
        '{"ok":true}',
        at(10),
    )
    with pytest.raises(TokenAlreadyResolvedError, match="COMPLETED") as raised:
        tokens.resolve("tok_a", FAILED, at(11))
    assert raised.value.state == "COMPLETED"
    with pytest.raises(TokenAlreadyResolvedError):
        tokens.heartbeat("tok_a", at(12))
    assert tokens.get("tok_a") == done


def test_unknown_tokens_are_not_found(backend: Backend):
    tokens = _tokens(backend)
    with pytest.raises(TokenNotFoundError, match="tok_nope"):
        tokens.resolve("tok_nope", COMPLETED, at(1))
    with pytest.raises(TokenNotFoundError):
        tokens.heartbeat("tok_nope", at(1))


def test_a_failure_keeps_its_error(backend: Backend):
    tokens = _tokens(backend)
    tokens.create(_token())
    tokens.resolve("tok_a", FAILED, at(3))
    got = tokens.get("tok_a")
    assert got is not None
    assert (got.status, got.error) == (TokenStatus.FAILED, ErrorInfo("Rejected", "no"))


def test_expire_times_out_only_past_a_deadline_and_never_over_a_completion(backend: Backend):
    tokens = _tokens(backend)
    token = tokens.create(_token())
    assert tokens.expire(token, at(99)).status is TokenStatus.PENDING
    expired = tokens.expire(token, at(100))
    assert (expired.status, expired.timeout_reason) == (TokenStatus.TIMED_OUT, "timeout")
    with pytest.raises(TokenAlreadyResolvedError, match="TIMED_OUT"):
        tokens.resolve("tok_a", COMPLETED, at(101))
    other = tokens.create(_token("tok_b"))
    tokens.resolve("tok_b", COMPLETED, at(50))
    # The run read it pending before the completion landed: the completion stands.
    assert tokens.expire(other, at(200)).status is TokenStatus.COMPLETED


def test_a_heartbeat_moves_the_heartbeat_deadline_and_a_stale_expire_loses(backend: Backend):
    tokens = _tokens(backend)
    read = tokens.create(_token(heartbeat_timeout=30.0, timeout_at=None))
    beat = tokens.heartbeat("tok_a", at(20))
    assert beat.heartbeat_at == at(50)
    # The run decided from its older read (deadline 30) that it had expired.
    assert tokens.expire(read, at(40)).status is TokenStatus.PENDING
    expired = tokens.expire(beat, at(50))
    assert (expired.status, expired.timeout_reason) == (TokenStatus.TIMED_OUT, "heartbeat")


def test_large_data_goes_to_the_blob_store_and_too_large_data_changes_nothing(backend: Backend):
    tokens = _tokens(backend)
    tokens.create(_token())
    big = '"' + "x" * (backend.settings.inline_limit + 10) + '"'
    blobs = backend.blob_count()
    with pytest.raises(PayloadTooLarge, match="token 'tok_a' data"):
        tokens.resolve(
            "tok_a", Resolution(TokenStatus.COMPLETED, data='"' + "y" * 2_000_000 + '"'), at(1)
        )
    assert tokens.get("tok_a") == _token()
    tokens.resolve("tok_a", Resolution(TokenStatus.COMPLETED, data=big), at(2))
    assert backend.blob_count() == blobs + 1
    got = tokens.get("tok_a")
    assert got is not None
    assert got.data == big


def _while_in_flight(backend: Backend, action: Callable[[], object]) -> None:
    """Run ``action`` once, while the next token write is on its way to the store.

    On moto the action runs in botocore's ``before-send`` of that request, so it
    lands first; the memory store has no wire, so it simply runs first.
    """
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


@pytest.mark.parametrize(("first", "second"), [(COMPLETED, FAILED), (FAILED, COMPLETED)])
def test_racing_completion_and_failure_resolve_the_token_once(
    backend: Backend, first: Resolution, second: Resolution
):
    tokens = _tokens(backend)
    tokens.create(_token())
    landed: list[TokenInfo] = []
    _while_in_flight(backend, lambda: landed.append(tokens.resolve("tok_a", second, at(5))))
    with pytest.raises(TokenAlreadyResolvedError) as raised:
        tokens.resolve("tok_a", first, at(5))
    assert raised.value.state == second.status.value
    stored = tokens.get("tok_a")
    assert stored is not None
    assert stored == landed[0]
    assert (stored.status, stored.data, stored.error) == (second.status, second.data, second.error)


def test_threads_racing_on_the_memory_store_resolve_the_token_once(backend: Backend):
    if backend.name != "memory":
        pytest.skip("in-process moto does not serialise concurrent requests; see the test above")
    tokens = _tokens(backend)
    tokens.create(_token())
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def resolve(resolution: Resolution) -> None:
        barrier.wait()
        try:
            outcomes.append(tokens.resolve("tok_a", resolution, at(5)).status)
        except TokenAlreadyResolvedError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=resolve, args=(r,)) for r in (COMPLETED, FAILED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [got for got in outcomes if isinstance(got, TokenStatus)]
    lost = [got for got in outcomes if isinstance(got, TokenAlreadyResolvedError)]
    assert (len(won), len(lost)) == (1, 1)
    assert lost[0].state == won[0].value


def test_a_completion_retried_after_a_lost_response_is_not_a_second_completion(aws: Backend):
    """botocore retries an UpdateItem that was applied; the retry must not raise 'already'."""
    tokens = _tokens(aws)
    tokens.create(_token())
    assert aws.faults is not None
    aws.faults.inject("UpdateItem", Fault.APPLIED_THEN_TIMEOUT, calls={1})
    done = tokens.resolve("tok_a", COMPLETED, at(4))
    assert done.status is TokenStatus.COMPLETED
    assert [i.operation for i in aws.faults.injected] == ["UpdateItem"]


def test_a_pending_token_without_a_timeout_never_expires_from_the_table(aws: Backend):
    """DynamoDB's TTL must not delete a token a run may still be waiting on."""
    from durable_lambda.adapters.aws.dynamodb.tokens import token_key  # noqa: PLC0415 - boto

    tokens = _tokens(aws)
    tokens.create(_token(timeout_at=None))
    client = aws.extra["ports"].tokens.client

    def ttl() -> str | None:
        item = client.get_item(TableName=aws.settings.table_name, Key=token_key("tok_a"))["Item"]
        return item.get("ttl", {}).get("N")

    assert ttl() is None
    tokens.resolve("tok_a", COMPLETED, at(10))
    assert ttl() == str(int((at(10) + aws.extra["ports"].tokens.retention).timestamp()))


def test_each_token_operation_is_one_request(aws: Backend):
    tokens, counter = _tokens(aws), aws.counter
    assert counter is not None
    counter.reset()
    token = tokens.create(_token(heartbeat_timeout=30.0))
    assert counter.snapshot() == {"dynamodb.PutItem": 1}
    for name, operation in [
        ("dynamodb.PutItem", lambda: tokens.create(token)),  # exists: comes back with the refusal
        ("dynamodb.GetItem", lambda: tokens.get("tok_a")),
        ("dynamodb.UpdateItem", lambda: tokens.heartbeat("tok_a", at(10))),
        ("dynamodb.UpdateItem", lambda: tokens.expire(token, at(35))),  # refused: beat at 10
        ("dynamodb.UpdateItem", lambda: tokens.resolve("tok_a", COMPLETED, at(36))),
        ("dynamodb.UpdateItem", lambda: tokens.heartbeat("tok_b", at(37))),  # not found
    ]:
        counter.reset()
        with contextlib.suppress(TokenNotFoundError):
            operation()
        assert counter.snapshot() == {name: 1}, name


def test_a_token_keeps_only_secret_hashes_and_a_second_create_adds_its_own(backend: Backend):
    tokens = _tokens(backend)
    first = secret_hash("first-secret")
    tokens.create(_token(secret_hashes=(first,)))
    # A create re-executed after a crash minted another secret: both URLs work.
    again = tokens.create(_token(secret_hashes=(secret_hash("second-secret"),)))
    for stored in (again, tokens.get("tok_a")):
        assert stored is not None
        assert secret_matches(stored, "first-secret")
        assert secret_matches(stored, "second-secret")
        assert not secret_matches(stored, "third-secret")
        assert not secret_matches(stored, first)  # the hash is not itself a secret
    # Once resolved, no new secret is added: there is nothing left to call back.
    tokens.resolve("tok_a", COMPLETED, at(5))
    late = tokens.create(_token(secret_hashes=(secret_hash("late-secret"),)))
    assert not secret_matches(late, "late-secret")
    stored = tokens.get("tok_a")
    assert stored is not None
    assert not secret_matches(stored, "late-secret")
    assert len(stored.secret_hashes) == 2


def test_a_token_without_secret_hashes_matches_no_secret(backend: Backend):
    tokens = _tokens(backend)
    tokens.create(_token())
    stored = tokens.get("tok_a")
    assert stored is not None
    assert stored.secret_hashes == ()
    assert not secret_matches(stored, "")


def test_a_token_whose_id_names_its_run_keeps_the_contract_and_comes_with_its_history(
    backend: Backend,
):
    tokens = _tokens(backend)
    run = backend.new_run()
    token_id = token_id_for(run.run_id, "approval#0")
    token = _token(token_id, run_id=run.run_id, heartbeat_timeout=30.0)
    assert tokens.create(token) == token
    assert tokens.create(token) == token  # a second create returns the first
    assert tokens.get(token_id) == token
    tokens.create(_token(run_id=run.run_id))  # an id naming no run: kept apart
    history = backend.store.load_history(run.run_id)
    assert (history.entries, list(history.tokens)) == ([], [token_id])
    assert history.tokens[token_id] == token
    beaten = tokens.heartbeat(token_id, at(10))
    assert tokens.expire(beaten, at(35)).status is TokenStatus.PENDING  # the beat moved it
    done = tokens.resolve(token_id, COMPLETED, at(36))
    assert (done.status, done.value()) == (TokenStatus.COMPLETED, {"ok": True})
    with pytest.raises(TokenAlreadyResolvedError, match="COMPLETED"):
        tokens.resolve(token_id, FAILED, at(37))
    assert backend.store.load_history(run.run_id).tokens[token_id] == tokens.get(token_id) == done
    # Another run's history does not carry it.
    assert token_id not in backend.store.load_history(backend.new_run().run_id).tokens


def test_a_history_is_one_query_and_loads_a_tokens_blob_only_when_looked_at(aws: Backend):
    tokens, counter = _tokens(aws), aws.counter
    assert counter is not None
    blobs = RequestCounter().attach(aws.extra["ports"].blobs.client)
    run = aws.new_run()
    token_id = token_id_for(run.run_id, "approval#0")
    tokens.create(_token(token_id, run_id=run.run_id))
    big = '"' + "x" * (aws.settings.inline_limit + 10) + '"'
    tokens.resolve(token_id, Resolution(TokenStatus.COMPLETED, data=big), at(1))
    counter.reset()
    blobs.reset()
    history = aws.store.load_history(run.run_id)
    assert counter.snapshot() == {"dynamodb.Query": 1}
    assert blobs.snapshot() == {}  # nobody looked at the token yet
    assert history.tokens[token_id].data == big
    assert blobs.snapshot() == {"s3.GetObject": 1}


def test_a_token_is_kept_in_its_runs_partition_and_an_old_id_in_its_own(aws: Backend):
    from durable_lambda.adapters.aws.dynamodb.tokens import token_key  # noqa: PLC0415 - boto

    run = aws.new_run()
    token_id = token_id_for(run.run_id, "approval#0")
    assert token_key(token_id) == {
        "pk": {"S": f"RUN#{run.run_id}"},
        "sk": {"S": f"TOKEN#{token_id}"},
    }
    legacy = "tok_0123456789abcdef0123456789abcdef"  # created before ids named their run
    assert token_key(legacy) == {"pk": {"S": f"TOKEN#{legacy}"}, "sk": {"S": "TOKEN"}}
    tokens = _tokens(aws)
    tokens.create(_token(legacy, run_id=run.run_id))
    assert tokens.resolve(legacy, COMPLETED, at(1)).status is TokenStatus.COMPLETED
