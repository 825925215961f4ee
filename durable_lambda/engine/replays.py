"""What a replay ``from_step`` keeps of the original run's journal. Pure.

A replay is a new run of the same task. From a named step, the entries the
original recorded before that step are copied into the new run, so replaying
them returns their recorded results and the new run executes from that step
on. "Before" is journal order (``seq``, the order calls were made, across
scopes), with two exceptions that keep the named step executable:

- a composite call enclosing the step (a child context or a batch whose scope
  path is a prefix of the step's scope) is not copied: its recorded result
  would replay the whole block, the step included; the calls before the step
  inside it are copied and replay alone;
- an entry with no settled outcome (a step between attempts, a wait or token
  wait still pending, an at-most-once step mid-attempt) is not copied: the new
  run makes that call afresh instead of inheriting the original's state.
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_lambda.engine.journal import EntryStatus, JournalEntry
from durable_lambda.errors import UnknownStepError

#: Outcomes a replay may inherit: the call is over in the original.
SETTLED = frozenset({EntryStatus.COMPLETED, EntryStatus.FAILED})
#: Names the runtime gives its own calls (``$wait``...): not steps a user names.
_INTERNAL_PREFIX = "$"


def step_names(journal: Sequence[JournalEntry]) -> list[str]:
    """The names of the user's calls in ``journal``, each once, in journal order."""
    ordered = sorted(journal, key=lambda e: e.seq)
    names = (e.name for e in ordered if not e.name.startswith(_INTERNAL_PREFIX))
    return list(dict.fromkeys(names))


def find_step(run_id: str, journal: Sequence[JournalEntry], step: str) -> JournalEntry:
    """The first entry (in journal order) named ``step``, or whose identity is ``step``.

    ``step`` is a name (``charge``: its first occurrence in any scope) or a
    full identity (``charge#1``, ``t0/charge#0``) to pick a later occurrence.

    Raises:
        UnknownStepError: No entry matches (naming the steps that exist).
    """
    matches = [e for e in journal if step in {e.name, e.key}]
    if not matches:
        raise UnknownStepError(run_id, step, step_names(journal))
    return min(matches, key=lambda e: e.seq)


def _encloses(entry: JournalEntry, scope: str) -> bool:
    """Whether ``entry`` is a composite call whose scope holds ``scope``."""
    path = entry.key
    return scope == path or scope.startswith(f"{path}/")


def history_before(run_id: str, journal: Sequence[JournalEntry], step: str) -> list[JournalEntry]:
    """The entries a replay from ``step`` copies, in journal order (see the module doc).

    Raises:
        UnknownStepError: The journal holds no such step.
    """
    target = find_step(run_id, journal, step)
    kept = [
        e
        for e in journal
        if e.seq < target.seq and e.status in SETTLED and not _encloses(e, target.scope)
    ]
    return sorted(kept, key=lambda e: e.seq)
