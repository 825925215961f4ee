"""The run state machine: statuses and the transitions allowed between them. Pure."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "QUEUED"
    WAITING_FOR_SLOT = "WAITING_FOR_SLOT"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        """True once the run can never execute again."""
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.EXPIRED})

#: Statuses from which an invocation may take the run's lease.
RESUMABLE = frozenset({RunStatus.QUEUED, RunStatus.SUSPENDED, RunStatus.WAITING_FOR_SLOT})

_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.WAITING_FOR_SLOT, RunStatus.CANCELED, RunStatus.EXPIRED}
        | {RunStatus.FAILED}
    ),
    RunStatus.WAITING_FOR_SLOT: frozenset(
        {RunStatus.RUNNING, RunStatus.CANCELED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.RUNNING,  # a crashed holder's lease is taken over
            RunStatus.SUSPENDED,
            RunStatus.WAITING_FOR_SLOT,
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.CANCELED,
        }
    ),
    RunStatus.SUSPENDED: frozenset(
        {RunStatus.RUNNING, RunStatus.WAITING_FOR_SLOT, RunStatus.CANCELED, RunStatus.FAILED}
    ),
}


def can_transition(current: RunStatus, target: RunStatus) -> bool:
    """Whether a run in ``current`` may move to ``target``."""
    return target in _ALLOWED.get(current, frozenset())
