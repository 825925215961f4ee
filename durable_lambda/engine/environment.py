"""The outside world as the engine sees it during one invocation. Pure: only callables and data."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from durable_lambda.engine.children import Children
from durable_lambda.engine.journal import JournalEntry
from durable_lambda.engine.observer import NoObserver, StepObserver
from durable_lambda.engine.retry import RandomSource
from durable_lambda.engine.tokens import Tokens
from durable_lambda.engine.transaction import TableWrite
from durable_lambda.errors import ConfigurationError

Recorder = Callable[[JournalEntry], None]
"""Persists a journal entry before the task goes on (raises ``LeaseLostError`` when fenced out)."""

TransactRecorder = Callable[[JournalEntry, tuple[TableWrite, ...]], None]
"""Persists a journal entry with a transactional step's writes, all or nothing."""


@dataclass(slots=True)
class Environment:
    """The outside world as the engine sees it during one invocation.

    Attributes:
        now: The current time (UTC, aware).
        remaining: Seconds left before the invocation's deadline.
        record: Persists a journal entry (fenced by the run's lease).
        sleep: Waits in-process; used for waits shorter than ``short_wait``.
        safety_margin: Seconds before the deadline at which no new step starts.
        short_wait: Waits at most this long sleep in-process when time allows.
        rng: Randomness for retry jitter.
        observer: Hears each live step attempt (plugins).
        children: Starts and reads child runs (``None``: child tasks unavailable).
        children_fallback: Seconds after which a run waiting on children wakes
            even if no child's nudge arrived (a lost nudge still recovers).
        transact: Persists a transactional step's record with its writes, in
            one transaction (raises ``TransactionConditionFailed`` when a
            write's condition fails; nothing is then written).
        tokens: Creates, reads and times out wait tokens (``None``: unavailable).
        token_recheck: Seconds after which a run waiting on a token with no
            nearer deadline reads it again (a lost completion nudge recovers).
        api_base_url: The HTTP API's base URL, for ``Token.url`` (``None``: no URL).
        callback_key: Derives each token's callback secret (``None``: a random
            secret, kept in the run's journal so a replay hands back the same URL).
    """

    now: Callable[[], dt.datetime]
    remaining: Callable[[], float]
    record: Recorder
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    safety_margin: float = 10.0
    short_wait: float = 1.0
    rng: RandomSource | None = None
    observer: StepObserver = field(default_factory=NoObserver)
    children: Children | None = None
    children_fallback: float = 3600.0
    transact: TransactRecorder = field(default=lambda _entry, _writes: _no_transactions())
    tokens: Tokens | None = None
    token_recheck: float = 21600.0
    api_base_url: str | None = None
    callback_key: bytes | None = field(default=None, repr=False)


def _no_transactions() -> None:
    raise ConfigurationError("this backend cannot commit transactional steps (ctx.transact)")
