"""Cancel runs: the run ends CANCELED, and everything it held or started is let go.

A run nobody executes is canceled at once by one conditional write; a run a
live invocation holds is flagged, and that invocation ends it CANCELED at its
next step boundary (``RunStore.cancel_run``). Whoever writes CANCELED then
settles the run here: its concurrency unit goes back and is handed to the next
parked run, its pending wait tokens are resolved CANCELED, its children are
canceled in turn (to a bounded depth), and its parent is nudged as for any
child's end, so a parent waiting on it receives a canceled ``RunResult``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from durable_lambda.admission import Admission, unit_of
from durable_lambda.engine.journal import EntryKind, JournalEntry
from durable_lambda.engine.records import ANY_EPOCH, CancelAction, ResumeMessage, RunRecord
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import Resolution, TokenStatus
from durable_lambda.errors import RunFinishedError, TokenAlreadyResolvedError, TokenNotFoundError
from durable_lambda.plugins import run_ended
from durable_lambda.ports import Clock, ResumeQueue, RunStore, TokenStore

__all__ = ["DEFAULT_REASON", "MAX_CANCEL_DEPTH", "Cancels"]

#: How deep a cancel follows children of children.
MAX_CANCEL_DEPTH = 10
#: What a canceled run records when the caller gives no reason.
DEFAULT_REASON = "canceled by request"


class Cancels:
    """Cancels runs and settles what a canceled run leaves behind.

    Args:
        store: The run store.
        queue: Where parents' nudges and handed-off units' messages go.
        clock: Time.
        admission: Gives units back and hands them on (``None``: no queue limits).
        tokens: The wait tokens (``None``: none to resolve).
        max_depth: How deep the cascade to children goes.
    """

    def __init__(
        self,
        *,
        store: RunStore,
        queue: ResumeQueue,
        clock: Clock,
        admission: Admission | None = None,
        tokens: TokenStore | None = None,
        max_depth: int = MAX_CANCEL_DEPTH,
    ) -> None:
        """Wire the canceller to its ports."""
        self.store = store
        self.queue = queue
        self.clock = clock
        self.admission = admission
        self.tokens = tokens
        self.max_depth = max_depth

    def cancel(self, run_id: str, reason: str = DEFAULT_REASON) -> RunRecord:
        """Cancel ``run_id``: CANCELED now, or at its next step boundary while it runs.

        Returns:
            The run as it now stands: CANCELED, or RUNNING with ``cancel_requested``.

        Raises:
            RunNotFoundError: No such run.
            RunFinishedError: It has already finished; nothing changed. A run
                already CANCELED is settled again first (idempotent), so a
                caller retrying a cancel whose process died mid-way completes it.
        """
        try:
            return self._cancel(run_id, reason, depth=0)
        except RunFinishedError as exc:
            run = self.store.get_run(run_id) if exc.status == RunStatus.CANCELED else None
            if run is not None:
                self._release(run, parked=False)
                self.settle(run, depth=0)
                self.nudge_parent(run)
            raise

    def _cancel(self, run_id: str, reason: str, *, depth: int) -> RunRecord:
        result = self.store.cancel_run(run_id, self.clock.now(), reason)
        if result.action is CancelAction.NOW:
            run_ended(result.run)  # as a worker's terminal checkpoint would
            self._release(result.run, parked=result.previous is RunStatus.WAITING_FOR_SLOT)
            self.settle(result.run, depth=depth)
            self.nudge_parent(result.run)
        return result.run

    def settle(self, run: RunRecord, *, depth: int | None = None) -> None:
        """Resolve the canceled run's pending tokens CANCELED and cancel its children.

        ``depth``: how deep in a cascade this run is (``None``: its own depth
        below its root, for a run its worker ended).
        """
        level = run.depth if depth is None else depth
        journal = self.store.load_journal(run.run_id)
        self._resolve_tokens(_tokens_of(journal))
        if level >= self.max_depth:
            return
        for child in _children_of(journal):
            try:
                self._cancel(child, f"parent run {run.run_id} was canceled", depth=level + 1)
            except RunFinishedError:
                continue  # it ended first: nothing to cancel

    def nudge_parent(self, run: RunRecord) -> None:
        """Tell the run's parent it ended, as a finished child's worker does."""
        if run.parent_run_id is not None:
            self.queue.send(ResumeMessage(run.parent_run_id, ANY_EPOCH, run.run_id), 0)

    def _release(self, run: RunRecord, *, parked: bool) -> None:
        """Give back the run's unit (a granted or kept one), and hand units on."""
        if self.admission is None:
            return
        key = unit_of(run)
        self.admission.leave(key, run.run_id)
        if parked:
            # Its waiter is stale now: a hand-off drops it (and grants the next).
            self.admission.hand_off(key)

    def _resolve_tokens(self, token_ids: Sequence[str]) -> None:
        if self.tokens is None:
            return
        now = self.clock.now()
        for token_id in token_ids:
            try:
                self.tokens.resolve(token_id, Resolution(TokenStatus.CANCELED), now)
            except (TokenAlreadyResolvedError, TokenNotFoundError):
                continue  # resolved (or never made) before the cancel: it stands


def _tokens_of(journal: Sequence[JournalEntry]) -> list[str]:
    ids = []
    for entry in journal:
        if entry.kind is EntryKind.TOKEN and entry.result is not None:
            token_id = _json(entry.result).get("id")
            if isinstance(token_id, str):
                ids.append(token_id)
    return ids


def _children_of(journal: Sequence[JournalEntry]) -> list[str]:
    children: list[str] = []
    for entry in journal:
        if entry.kind in {EntryKind.CHILD, EntryKind.CHILD_WAIT} and entry.result is not None:
            runs = _json(entry.result).get("runs")
            if isinstance(runs, list):
                children += [run_id for run_id in runs if isinstance(run_id, str)]
    return list(dict.fromkeys(children))


def _json(text: str) -> dict[str, object]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
