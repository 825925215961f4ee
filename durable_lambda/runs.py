"""Runs from Python, straight from the table: ``retrieve``, ``list``, ``wait``, ``cancel``.

The same typed models the HTTP API returns (:mod:`durable_lambda.views`),
without the HTTP hop::

    from durable_lambda import runs

    detail = runs.retrieve(run_id)  # status, payload, output, timeline
    page = runs.list(task="process-order", status="FAILED", limit=20)
    done = runs.wait(run_id, timeout=60)  # polls until the run ends
    again = runs.replay(run_id, from_step="charge")  # a new run; steps before are copied
    runs.cancel(run_id)  # CANCELED now, or at its next step boundary while it runs

The module functions use the process's default client (the environment's
settings); :class:`Runs` takes an explicit store for tests and other wiring.
"""

from __future__ import annotations

import builtins
import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durable_lambda.cancels import DEFAULT_REASON
from durable_lambda.engine.records import RunQuery
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ConfigurationError, RunNotFoundError, RunWaitTimeoutError
from durable_lambda.views import RunDetail, RunSummary, run_detail, run_summary, token_ids

if TYPE_CHECKING:
    from durable_lambda.cancels import Cancels
    from durable_lambda.engine.tokens import TokenInfo
    from durable_lambda.ports import RunStore, TokenStore
    from durable_lambda.task import RunHandle

__all__ = ["MAX_PAGE", "Runs", "cancel", "list", "replay", "retrieve", "wait"]

#: The most runs one listing returns.
MAX_PAGE = 100


class Runs:
    """Reads runs from a run store, and cancels them.

    Args:
        store: The run store (DynamoDB, or memory in tests).
        sleep: How ``wait`` pauses between reads (a test passes a fake).
        monotonic: The clock ``wait``'s timeout is measured on.
        tokens: The token store: a run's wait tokens then show their state
            in its timeline (one read per token the run created).
        cancels: What ``cancel`` goes through (``Client.cancels``); ``None``: reads only.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        tokens: TokenStore | None = None,
        cancels: Cancels | None = None,
    ) -> None:
        """Read from ``store``."""
        self.store = store
        self.tokens = tokens
        self._sleep = sleep
        self._monotonic = monotonic
        self._cancels = cancels

    def cancel(self, run_id: str, *, reason: str = DEFAULT_REASON) -> RunDetail:
        """Cancel the run; it as it now stands (see ``Client.cancel_run``).

        A waiting, parked, delayed or queued run is CANCELED at once; a running
        one reads RUNNING with ``cancel_requested`` until its next step boundary.

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It has already finished; nothing changed.
            ConfigurationError: These runs were built without ``cancels``.
        """
        if self._cancels is None:
            raise ConfigurationError("these runs were built without cancels= (read only)")
        self._cancels.cancel(run_id, reason)
        return self.retrieve(run_id)

    def retrieve(self, run_id: str, *, include_values: bool = False) -> RunDetail:
        """The run with its payload, output, error, metadata, children and timeline.

        Three reads: the run, its journal and its events (and one per wait
        token it created, with a token store).

        Args:
            run_id: The run.
            include_values: Return large values inline instead of by reference.

        Raises:
            RunNotFoundError: No such run.
        """
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        journal = self.store.load_journal(run_id)
        events = self.store.list_events(run_id)
        tokens: dict[str, TokenInfo] = {}
        if self.tokens is not None:
            for token_id in token_ids(journal):
                token = self.tokens.get(token_id)
                if token is not None:
                    tokens[token_id] = token
        return run_detail(run, journal, events, include_values=include_values, tokens=tokens)

    def list(
        self,
        *,
        task: str | None = None,
        status: RunStatus | str | None = None,
        tag: str | None = None,
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        limit: int = 50,
        before: tuple[dt.datetime, str] | None = None,
    ) -> builtins.list[RunSummary]:
        """Runs newest first, filtered (every filter optional).

        Args:
            task: Only this task's runs.
            status: Only runs in this status.
            tag: Only runs with this tag.
            created_from: Created at or after.
            created_to: Created at or before.
            limit: At most this many (1-100).
            before: Continue after this ``(created_at, run_id)``: the last run of
                the previous page.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ConfigurationError(f"limit must be 1-{MAX_PAGE}, got {limit}")
        query = RunQuery(
            task_id=task,
            status=RunStatus(status) if status is not None else None,
            limit=limit,
            tag=tag,
            created_from=created_from,
            created_to=created_to,
            before=before,
        )
        return [run_summary(run) for run in self.store.list_runs(query)]

    def wait(self, run_id: str, *, timeout: float, poll_interval: float = 1.0) -> RunDetail:
        """Wait until the run has ended; its final state.

        Raises:
            RunNotFoundError: No such run.
            RunWaitTimeoutError: Still not ended after ``timeout`` seconds.
        """
        deadline = self._monotonic() + timeout
        while True:
            run = self.store.get_run(run_id)
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            if run.status.is_terminal:
                return self.retrieve(run_id)
            left = deadline - self._monotonic()
            if left <= 0:
                raise RunWaitTimeoutError(run_id, run.status.value, timeout)
            self._sleep(min(poll_interval, left))


def _default() -> Runs:
    from durable_lambda.services import default_client  # noqa: PLC0415 - boto3 on first use

    client = default_client()
    return Runs(client.store, tokens=client.tokens, cancels=client.cancels)


def retrieve(run_id: str, *, include_values: bool = False) -> RunDetail:
    """:meth:`Runs.retrieve` on the default client's table."""
    return _default().retrieve(run_id, include_values=include_values)


def list(  # noqa: A001 - the public name: runs.list(...)
    *,
    task: str | None = None,
    status: RunStatus | str | None = None,
    tag: str | None = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    limit: int = 50,
) -> builtins.list[RunSummary]:
    """:meth:`Runs.list` on the default client's table."""
    return _default().list(
        task=task,
        status=status,
        tag=tag,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
    )


def wait(run_id: str, *, timeout: float, poll_interval: float = 1.0) -> RunDetail:
    """:meth:`Runs.wait` on the default client's table."""
    return _default().wait(run_id, timeout=timeout, poll_interval=poll_interval)


def replay(run_id: str, payload: Any = None, from_step: str | None = None) -> RunHandle:
    """:meth:`Client.replay <durable_lambda.client.Client.replay>` on the default client.

    A new run of the same task, linked to ``run_id`` (its ``replay_of``). ``None``
    keeps the original payload. With ``from_step``, the original's journal before
    that step is copied, so those steps are not executed again and keep their
    recorded results even with a new payload.
    """
    from durable_lambda.services import default_client  # noqa: PLC0415 - boto3 on first use

    return default_client().replay(run_id, payload, from_step)


def cancel(run_id: str, *, reason: str = DEFAULT_REASON) -> RunDetail:
    """:meth:`Runs.cancel` on the default client's table."""
    return _default().cancel(run_id, reason=reason)
