"""Run statuses and their classes (terminal, resumable). Pure.

The transitions themselves are the rules of ``engine/transitions.py``.
"""

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
