"""A run's history as the worker reads it: the journal, and the wait tokens kept beside it. Pure.

A token is stored beside its run's journal, so the one read that loads the
journal brings the run's tokens along: a run woken by a completion finds the
token resolved there and reads nothing more. Only a resolved token is taken
from that read: a resolution never changes, while a pending token may be
resolved or heartbeaten any moment, so it is read again when waited on, as
before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from durable_lambda.engine.journal import JournalEntry
from durable_lambda.engine.tokens import TokenInfo, Tokens, TokenStatus


class LoadedTokens(Mapping[str, TokenInfo]):
    """Tokens by id, each built when first looked up (its data may sit in a blob)."""

    def __init__(self, loaders: Mapping[str, Callable[[], TokenInfo]] | None = None) -> None:
        """Hold ``loaders``: each returns its token whole (data loaded) when called."""
        self._loaders = dict(loaders or {})
        self._loaded: dict[str, TokenInfo] = {}

    def __getitem__(self, token_id: str) -> TokenInfo:
        """The token, built on the first look (a blob is loaded once, only if looked at)."""
        token = self._loaded.get(token_id)
        if token is None:
            token = self._loaded[token_id] = self._loaders[token_id]()
        return token

    def __iter__(self) -> Iterator[str]:
        """The token ids."""
        return iter(self._loaders)

    def __len__(self) -> int:
        """How many tokens."""
        return len(self._loaders)

    def __contains__(self, token_id: object) -> bool:
        """Whether ``token_id`` is here, without building it."""
        return token_id in self._loaders


@dataclass(frozen=True, slots=True)
class History:
    """What one read of a run returns: its journal, and its tokens as they stood then.

    Attributes:
        entries: The journal entries, in position order.
        tokens: The run's wait tokens kept beside its journal, by id (tokens
            with ids that name no run are kept apart, and are not here).
    """

    entries: list[JournalEntry]
    tokens: Mapping[str, TokenInfo] = field(default_factory=LoadedTokens)


class KnownTokens:
    """The token store, answering reads of tokens resolved when the history was read.

    Args:
        store: The token store, for creates, timeouts and every other read.
        known: The run's tokens as its history read them.
    """

    def __init__(self, store: Tokens, known: Mapping[str, TokenInfo]) -> None:
        """Wrap ``store``."""
        self.store = store
        self.known = known

    def create(self, token: TokenInfo) -> TokenInfo:
        """See :class:`~durable_lambda.engine.tokens.Tokens`."""
        return self.store.create(token)

    def get(self, token_id: str) -> TokenInfo | None:
        """The token: as the history read it once resolved (final), else read now."""
        if token_id in self.known:
            token = self.known[token_id]
            if token.status is not TokenStatus.PENDING:
                return token
        return self.store.get(token_id)

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        """See :class:`~durable_lambda.engine.tokens.Tokens`."""
        return self.store.expire(token, now)
