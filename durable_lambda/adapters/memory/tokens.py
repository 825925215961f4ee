"""Wait tokens in memory: the reference for the DynamoDB token store (one contract suite)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, replace
from functools import partial

from durable_lambda.engine.history import LoadedTokens
from durable_lambda.engine.token_ids import run_of_token
from durable_lambda.engine.tokens import (
    Resolution,
    TokenInfo,
    TokenStatus,
    expired_reason,
    resolved,
    timed_out,
)
from durable_lambda.errors import TokenAlreadyResolvedError, TokenNotFoundError
from durable_lambda.values import StoredValue, ValueStore


@dataclass(frozen=True, slots=True)
class _Stored:
    token: TokenInfo  # without its data, which is a stored value
    data: StoredValue | None = None


class MemoryTokenStore:
    """Tokens in a dict behind a lock, with the DynamoDB store's conditional semantics."""

    def __init__(self, values: ValueStore) -> None:
        """Store completion data through ``values`` (inline, blob, or refused as too large)."""
        self.values = values
        self._lock = threading.Lock()
        self._tokens: dict[str, _Stored] = {}
        self.write_requests = 0

    def create(self, token: TokenInfo) -> TokenInfo:
        """Create ``token`` unless its id exists; the token as stored either way.

        An existing pending token gains ``token``'s secret hashes (see
        ``ports.TokenStore.create``).
        """
        with self._lock:
            self.write_requests += 1
            existing = self._tokens.get(token.token_id)
            if existing is None:
                self._tokens[token.token_id] = _Stored(replace(token, data=None))
                return token
            added = tuple(h for h in token.secret_hashes if h not in existing.token.secret_hashes)
            if added and existing.token.status is TokenStatus.PENDING:
                hashes = existing.token.secret_hashes + added
                existing = replace(existing, token=replace(existing.token, secret_hashes=hashes))
                self._tokens[token.token_id] = existing
        return self._hydrate(existing)

    def get(self, token_id: str) -> TokenInfo | None:
        """The token, or ``None``."""
        with self._lock:
            stored = self._tokens.get(token_id)
        return None if stored is None else self._hydrate(stored)

    def of_run(self, run_id: str) -> LoadedTokens:
        """The tokens whose ids name run ``run_id`` (the run's history carries them)."""
        with self._lock:
            found = {i: s for i, s in self._tokens.items() if run_of_token(i) == run_id}
        return LoadedTokens({i: partial(self._hydrate, s) for i, s in found.items()})

    def resolve(self, token_id: str, resolution: Resolution, now: dt.datetime) -> TokenInfo:
        """Resolve the pending token once (see ``ports.TokenStore.resolve``)."""
        # Stored first, as DynamoDB's store does: a value refused as too large
        # leaves the token untouched.
        data = (
            None
            if resolution.data is None
            else self.values.store(f"token {token_id!r} data", resolution.data)
        )
        with self._lock:
            self.write_requests += 1
            stored = self._tokens.get(token_id)
            if stored is None:
                raise TokenNotFoundError(token_id)
            if stored.token.status is not TokenStatus.PENDING:
                raise TokenAlreadyResolvedError(token_id, stored.token.status.value)
            now_resolved = resolved(stored.token, replace(resolution, data=None), now)
            self._tokens[token_id] = _Stored(now_resolved, data)
        return replace(now_resolved, data=resolution.data)

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        """Time the token out while pending and past a deadline (see ``ports.TokenStore``)."""
        with self._lock:
            self.write_requests += 1
            stored = self._tokens.get(token.token_id)
            if stored is None:
                raise TokenNotFoundError(token.token_id)
            reason = expired_reason(stored.token, now)
            if reason is None:
                return self._hydrate(stored)
            stored = _Stored(timed_out(stored.token, reason, now))
            self._tokens[token.token_id] = stored
        return stored.token

    def heartbeat(self, token_id: str, now: dt.datetime) -> TokenInfo:
        """Record a heartbeat on the pending token (see ``ports.TokenStore.heartbeat``)."""
        with self._lock:
            self.write_requests += 1
            stored = self._tokens.get(token_id)
            if stored is None:
                raise TokenNotFoundError(token_id)
            if stored.token.status is not TokenStatus.PENDING:
                raise TokenAlreadyResolvedError(token_id, stored.token.status.value)
            stored = replace(stored, token=replace(stored.token, last_heartbeat_at=now))
            self._tokens[token_id] = stored
        return self._hydrate(stored)

    def _hydrate(self, stored: _Stored) -> TokenInfo:
        if stored.data is None:
            return stored.token
        return replace(stored.token, data=self.values.load(stored.data))
