"""Wait tokens as journaled calls: create once, wait without running, replay the outcome. Pure.

A token is one ``TOKEN#id`` record, resolved once by a conditional write
(PENDING to COMPLETED, FAILED or TIMED_OUT), so two racing resolutions settle
it once and every reader sees the winner. Its id derives from the run id and
the ``create_token`` call's identity, so a create re-executed after a crash
finds the same token. ``for_token`` records the token's outcome once it has
one (replay never reads the token again); while it is pending the run
suspends with the nudge flag set until the token's nearest deadline (or a far
recheck time), and a completion nudges the run awake at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from durable_lambda import serde
from durable_lambda.engine.calls import entry_of
from durable_lambda.engine.journal import Call, EntryKind, EntryStatus, ErrorInfo, call_key
from durable_lambda.engine.outcome import SuspendReason
from durable_lambda.engine.records import CANCELED_ERROR
from durable_lambda.engine.scopes import current_scope
from durable_lambda.engine.token_ids import token_id_for
from durable_lambda.engine.token_secrets import (
    callback_secret,
    new_secret,
    secret_hash,
)
from durable_lambda.errors import (
    ConfigurationError,
    TokenFailedError,
    TokenNotFoundError,
    TokenTimeoutError,
)

if TYPE_CHECKING:
    from durable_lambda.engine.execution import Execution

#: The journal name of an unnamed ``create_token`` and of every ``for_token``.
TOKEN_NAME = "$token"  # noqa: S105 - a journal name, not a secret
FOR_TOKEN_NAME = "$for_token"  # noqa: S105 - a journal name, not a secret

TimeoutReason = Literal["timeout", "heartbeat"]


class TokenStatus(StrEnum):
    """Where a token is: pending until resolved, once, to one of the others."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"  # its run was canceled


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as stored (the ``TOKEN#id`` record).

    Attributes:
        token_id: The token's id (URL-safe).
        run_id: The run that created it and is woken when it resolves.
        status: Pending, or how it was resolved.
        created_at: When it was created.
        name: Its name, if the task gave one.
        timeout_at: It times out then unless resolved (``None``: never).
        heartbeat_timeout: Seconds allowed between heartbeats (``None``: no heartbeat needed).
        last_heartbeat_at: The last heartbeat (its creation until the first one).
        resolved_at: When it was resolved.
        data: The completion data as JSON text, once completed.
        error: What failed it (``tokens.fail``), once failed.
        timeout_reason: ``"timeout"`` or ``"heartbeat"``, once timed out.
        tags: Free-form labels.
        secret_hashes: SHA-256 hex digests of the secrets that authorise its
            callback URL; the secrets themselves are never stored on the token.
            More than one only when a create re-executed after a crash minted
            a second secret (both URLs may have been handed out).
    """

    token_id: str
    run_id: str
    status: TokenStatus
    created_at: dt.datetime
    name: str | None = None
    timeout_at: dt.datetime | None = None
    heartbeat_timeout: float | None = None
    last_heartbeat_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    data: str | None = None
    error: ErrorInfo | None = None
    timeout_reason: TimeoutReason | None = None
    tags: tuple[str, ...] = ()
    secret_hashes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def heartbeat_at(self) -> dt.datetime | None:
        """When it times out for want of a heartbeat (``None``: no heartbeat needed)."""
        if self.heartbeat_timeout is None:
            return None
        beat = self.last_heartbeat_at or self.created_at
        return beat + dt.timedelta(seconds=self.heartbeat_timeout)

    def deadline(self) -> tuple[dt.datetime, TimeoutReason] | None:
        """The nearest deadline and what it is, or ``None`` when it may wait forever."""
        candidates: list[tuple[dt.datetime, TimeoutReason]] = []
        if self.timeout_at is not None:
            candidates.append((self.timeout_at, "timeout"))
        if self.heartbeat_at is not None:
            candidates.append((self.heartbeat_at, "heartbeat"))
        return min(candidates, key=lambda c: c[0]) if candidates else None

    def value(self, result_type: Any = None) -> Any:
        """The completion data decoded (validated into ``result_type`` when given)."""
        return None if self.data is None else serde.decode(self.data, result_type)


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a completer resolves a token: COMPLETED with data, or FAILED with an error."""

    status: TokenStatus
    data: str | None = None
    error: ErrorInfo | None = None


def resolved(token: TokenInfo, resolution: Resolution, now: dt.datetime) -> TokenInfo:
    """``token`` once ``resolution`` won (the stores call this rule, never decide apart)."""
    return replace(
        token,
        status=resolution.status,
        resolved_at=now,
        data=resolution.data,
        error=resolution.error,
    )


def expired_reason(token: TokenInfo, now: dt.datetime) -> TimeoutReason | None:
    """Whether a pending ``token`` may be resolved TIMED_OUT at ``now``, and why."""
    if token.status is not TokenStatus.PENDING:
        return None
    if token.timeout_at is not None and token.timeout_at <= now:
        return "timeout"
    heartbeat = token.heartbeat_at
    if heartbeat is not None and heartbeat <= now:
        return "heartbeat"
    return None


def timed_out(token: TokenInfo, reason: TimeoutReason, now: dt.datetime) -> TokenInfo:
    """``token`` resolved TIMED_OUT at ``now`` for ``reason``."""
    return replace(token, status=TokenStatus.TIMED_OUT, resolved_at=now, timeout_reason=reason)


class Tokens(Protocol):
    """What the engine needs of the token store (``ports.TokenStore`` provides it)."""

    def create(self, token: TokenInfo) -> TokenInfo:
        """Create ``token`` unless its id exists; the token as stored either way.

        An existing pending token gains ``token``'s secret hashes.
        """
        ...

    def get(self, token_id: str) -> TokenInfo | None:
        """The token, or ``None``."""
        ...

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        """Resolve ``token`` TIMED_OUT if still pending and past a deadline; the token as stored."""
        ...


@dataclass(frozen=True, slots=True)
class Token:
    """What ``wait.create_token`` returns: hand ``id`` (or ``url``) to whoever completes it.

    Attributes:
        id: The token's id, for ``tokens.complete(id, data)``.
        name: Its name, if given.
        timeout_at: When it times out unless completed (``None``: never).
        heartbeat_timeout: Seconds allowed between heartbeats, if any.
        url: Where the HTTP API completes it with IAM credentials
            (``None`` when no ``api_base_url`` is set).
        tags: Its labels.
        secret: The secret of its callback URL (``None`` for a token recorded
            before callbacks existed). Only its hash is stored on the token;
            derived from the worker's callback key, it is stored nowhere else.
        base_url: The HTTP API's base URL, if configured.
    """

    id: str
    name: str | None = None
    timeout_at: dt.datetime | None = None
    heartbeat_timeout: float | None = None
    url: str | None = None
    tags: tuple[str, ...] = field(default=())
    secret: str | None = field(default=None, repr=False)
    base_url: str | None = field(default=None, repr=False)
    # Set by a live create: the journal and slot it was created in, and the
    # token as stored, so a for_token right after it needs no read.
    _fresh: tuple[object, int, TokenInfo] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    @property
    def callback_path(self) -> str | None:
        """``/callbacks/<id>?secret=...``: completes it over HTTP with no AWS credentials.

        Whoever holds it can complete, fail or heartbeat the token (and nothing
        else): hand it only to the party meant to answer.
        """
        if self.secret is None:
            return None
        return f"/callbacks/{self.id}?secret={self.secret}"

    @property
    def callback_url(self) -> str | None:
        """:attr:`callback_path` under the API's base URL (``None`` without one)."""
        path = self.callback_path
        if path is None or not self.base_url:
            return None
        return f"{self.base_url.rstrip('/')}{path}"

    def to_json(self, *, with_secret: bool) -> dict[str, Any]:
        """The token as JSON data, for the run's own journal.

        ``with_secret``: keep a random secret there (no callback key), so a
        replay hands back the same URL; a derived one is derived again instead.
        """
        data = {
            "id": self.id,
            "name": self.name,
            "timeout_at": None if self.timeout_at is None else self.timeout_at.isoformat(),
            "heartbeat_timeout": self.heartbeat_timeout,
            "tags": list(self.tags),
        }
        return {**data, "secret": self.secret} if with_secret else data

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], base_url: str | None, key: bytes | None = None
    ) -> Token:
        """The token recorded by :meth:`to_json`, under the API's ``base_url``.

        Its secret is the recorded one, else derived again with ``key``.
        """
        timeout_at = data.get("timeout_at")
        secret = data.get("secret")
        if secret is None and key is not None:
            secret = callback_secret(key, str(data["id"]))
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            timeout_at=None if timeout_at is None else dt.datetime.fromisoformat(timeout_at),
            heartbeat_timeout=data.get("heartbeat_timeout"),
            url=token_url(base_url, str(data["id"])),
            tags=tuple(data.get("tags", ())),
            secret=secret,
            base_url=base_url,
        )


def token_url(base: str | None, token_id: str) -> str | None:
    """Where the HTTP API completes ``token_id``, under ``base`` (``None`` without one)."""
    return None if not base else f"{base.rstrip('/')}/tokens/{token_id}/complete"


def create_token(
    execution: Execution,
    *,
    name: str | None,
    timeout: float | None,
    heartbeat_timeout: float | None,
    tags: Sequence[str],
) -> Token:
    """Create a token as one journaled call; replay returns the recorded token."""
    call_name = name or TOKEN_NAME
    call = execution.journal.next_call(current_scope(), call_name, EntryKind.TOKEN)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.steps_replayed += 1
        data = json.loads(recorded.result or "{}")
        return Token.from_json(data, execution.env.api_base_url, execution.env.callback_key)
    # No check for a stop under way (another branch suspended): a create is
    # the runtime's own idempotent write, not a step body, and making it now
    # lets parallel branches hand out their tokens in the same invocation.
    now = execution.env.now()
    key = call_key(call.scope, call_name, call.occurrence)
    token_id = token_id_for(execution.run_id, key)
    derive = execution.env.callback_key
    secret = callback_secret(derive, token_id) if derive is not None else new_secret()
    wanted = TokenInfo(
        token_id=token_id,
        run_id=execution.run_id,
        status=TokenStatus.PENDING,
        created_at=now,
        name=name,
        timeout_at=None if timeout is None else now + dt.timedelta(seconds=timeout),
        heartbeat_timeout=heartbeat_timeout,
        tags=tuple(tags),
        secret_hashes=(secret_hash(secret),),
    )
    try:
        # A create re-executed after a crash finds the token it made: its
        # deadlines, not new ones, are the token's. Its secret joins the
        # token's (the first one may have been handed out by a step that ran
        # before the crash), so both callback URLs work.
        stored = _tokens(execution).create(wanted)
    except Exception as exc:  # a store error is not the task's: the invocation fails
        execution.fail_store(exc)
        raise  # pragma: no cover - fail_store always raises
    token = Token(
        id=stored.token_id,
        name=stored.name,
        timeout_at=stored.timeout_at,
        heartbeat_timeout=stored.heartbeat_timeout,
        url=token_url(execution.env.api_base_url, stored.token_id),
        tags=stored.tags,
        secret=secret,
        base_url=execution.env.api_base_url,
    )
    object.__setattr__(token, "_fresh", (execution.journal, call.seq, stored))
    entry = entry_of(
        call,
        call_name,
        EntryKind.TOKEN,
        EntryStatus.COMPLETED,
        1,
        result=json.dumps(token.to_json(with_secret=derive is None)),
        started_at=now,
        ended_at=now,
    )
    # With the next checkpoint, not a request of its own: a replay that lost it
    # derives the same id and finds the same token.
    execution.pend(entry)
    return token


def wait_token(execution: Execution, token: Token | str, result_type: Any) -> Any:
    """Return the data ``token`` was completed with; suspend while it is pending.

    A token created by the call just before, in this invocation, is not read:
    it was pending a moment ago, and a completion landing since then nudges
    the run, which finds it running and is re-sent until the run suspended.

    Raises:
        TokenFailedError: It was failed by ``tokens.fail``.
        TokenTimeoutError: Its timeout or heartbeat timeout passed first.
        TokenNotFoundError: No such token.
        ConfigurationError: The token belongs to another run.
    """
    token_id = token.id if isinstance(token, Token) else token
    call = execution.journal.next_call(current_scope(), FOR_TOKEN_NAME, EntryKind.TOKEN_WAIT)
    recorded = call.recorded
    if recorded is not None and recorded.status is EntryStatus.COMPLETED:
        execution.steps_replayed += 1
        return _outcome(json.loads(recorded.result or "{}"), result_type)
    if recorded is not None:
        token_id = str(json.loads(recorded.result or "{}").get("token", token_id))
    # As for a create, a stop under way does not prevent the read: a pending
    # token adds its own wake-up to the suspension (and its nudge flag).
    now = execution.env.now()
    fresh = token._fresh if isinstance(token, Token) else None  # noqa: SLF001 - set by create_token
    info: TokenInfo | None
    if (
        recorded is None
        and fresh is not None
        and fresh[0] is execution.journal
        and call.seq == fresh[1] + 1
        and expired_reason(fresh[2], now) is None
    ):
        info = fresh[2]  # nothing ran since its create: pending, as created
    else:
        info = _read(execution, token_id, now)
    if info is None:
        raise TokenNotFoundError(token_id)
    if info.run_id != execution.run_id:
        raise ConfigurationError(
            f"token {token_id!r} belongs to run {info.run_id}: only the run that created a "
            "token can wait for it"
        )
    started = recorded.started_at if recorded is not None else now
    if info.status is not TokenStatus.PENDING:
        outcome = _outcome_json(info)
        done = _entry(call, EntryStatus.COMPLETED, outcome, started, ended_at=now)
        # The outcome never changes: a replay that lost this record reads the same.
        execution.pend(done)
        return _outcome(outcome, result_type)
    deadline = info.deadline()
    recheck = now + dt.timedelta(seconds=execution.env.token_recheck)
    wake = recheck if deadline is None else min(deadline[0], recheck)
    waiting = _entry(call, EntryStatus.WAITING, {"token": token_id}, started, wake_at=wake)
    execution.pend(waiting)
    key = call_key(call.scope, FOR_TOKEN_NAME, call.occurrence)
    execution.suspend(SuspendReason.TOKEN, wake, f"{key}: token {token_id} pending")
    raise AssertionError  # pragma: no cover - suspend always raises


def _read(execution: Execution, token_id: str, now: dt.datetime) -> TokenInfo | None:
    """The token as stored, timed out first when pending past a deadline."""
    tokens = _tokens(execution)
    try:
        token = tokens.get(token_id)
        if token is not None and expired_reason(token, now) is not None:
            # Conditional: a completion that won the race stands whole.
            token = tokens.expire(token, now)
    except Exception as exc:  # a store error is not the task's: the invocation fails
        execution.fail_store(exc)
        raise  # pragma: no cover - fail_store always raises
    return token


def _entry(
    call: Call,
    status: EntryStatus,
    result: Mapping[str, Any],
    started: dt.datetime | None,
    **fields: Any,
) -> Any:
    return entry_of(
        call,
        FOR_TOKEN_NAME,
        EntryKind.TOKEN_WAIT,
        status,
        1,
        result=json.dumps(result),
        started_at=started,
        **fields,
    )


def _outcome_json(token: TokenInfo) -> dict[str, Any]:
    error = None if token.error is None else [token.error.type, token.error.message]
    return {
        "token": token.token_id,
        "status": token.status.value,
        "data": token.data,
        "error": error,
        "reason": token.timeout_reason,
    }


def _outcome(outcome: Mapping[str, Any], result_type: Any) -> Any:
    status = TokenStatus(outcome["status"])
    token_id = str(outcome["token"])
    if status is TokenStatus.COMPLETED:
        data = outcome.get("data")
        return None if data is None else serde.decode(data, result_type)
    if status is TokenStatus.FAILED:
        error_type, message = outcome.get("error") or ["TokenFailed", ""]
        raise TokenFailedError(str(error_type), str(message), token_id=token_id)
    if status is TokenStatus.CANCELED:
        raise TokenFailedError(CANCELED_ERROR, "its run was canceled", token_id=token_id)
    raise TokenTimeoutError(outcome.get("reason") or "timeout", token_id=token_id)


def _tokens(execution: Execution) -> Tokens:
    tokens = execution.env.tokens
    if tokens is None:
        raise ConfigurationError("wait tokens need a worker with a token store (none configured)")
    return tokens
