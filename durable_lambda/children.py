"""The worker's side of child tasks: start children of the run it holds, read their states."""

from __future__ import annotations

from collections.abc import Sequence

from durable_lambda.client import Client
from durable_lambda.engine.children import ChildStart, ChildState, Started
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.records import RunRecord
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ChildDepthExceeded
from durable_lambda.ports import RunStore


class ChildLauncher:
    """Starts the children of ``parent`` through ``client`` and reads them from ``store``."""

    def __init__(self, client: Client, store: RunStore, parent: RunRecord, max_depth: int) -> None:
        """Bind the launcher to the run an invocation holds."""
        self.client = client
        self.store = store
        self.parent = parent
        self.max_depth = max_depth

    def start(self, starts: Sequence[ChildStart], keys: Sequence[str]) -> Started:
        """Trigger each child, idempotently under ``keys``; their run ids in order.

        A key given in the options wins over the derived one (numbered per
        child when one call starts several). The starts of one call share
        their task and options (they come from one ``Task`` method call).

        Raises:
            ChildDepthExceeded: The children would nest deeper than ``max_depth``;
                nothing is created.
        """
        depth = self.parent.depth + 1
        if depth > self.max_depth:
            raise ChildDepthExceeded(
                f"run {self.parent.run_id} is at depth {self.parent.depth}: a child would be at "
                f"depth {depth}, above max_child_depth={self.max_depth}"
            )
        if not starts:
            return Started([], fresh=True)
        first = starts[0]  # the starts of one call share their task and options
        options = dict(first.options)
        given = options.pop("idempotency_key", None)
        if given is not None:
            keys = [given] if len(starts) == 1 else [f"{given}:{i}" for i in range(len(starts))]
        handles = self.client.trigger_children(
            first.task,
            [start.payload for start in starts],
            parent=self.parent,
            keys=keys,
            **options,
        )
        return Started([h.run_id for h in handles], fresh=not any(h.cached for h in handles))

    def states(self, run_ids: Sequence[str]) -> list[ChildState]:
        """The children's states, in order, in batched reads (a vanished child reads as FAILED)."""
        states = []
        for run_id, run in zip(run_ids, self.store.get_runs(run_ids), strict=True):
            if run is None:
                missing = ErrorInfo("RunNotFoundError", f"no run {run_id!r}")
                states.append(ChildState(run_id, RunStatus.FAILED, error=missing))
                continue
            states.append(ChildState(run_id, run.status, run.output, run.error))
        return states
