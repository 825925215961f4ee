"""Records made at every step: frozen to the type checker, plain slots at run time. Pure.

A ``@dataclass(frozen=True)`` blocks assignment at run time by routing its own
``__init__`` through ``object.__setattr__``, one call per field: for a
13-field :class:`~durable_lambda.engine.journal.JournalEntry` that is about
two thirds of the cost of making one (3.3-5.2 us against 1.1-1.6 us plain,
measured here), and the engine makes one or more per step.

:func:`frozen_record` makes a plain slotted dataclass that the type checker
treats as frozen (:pep:`681`'s ``frozen_default``): ``mypy --strict``, which CI
runs, refuses any assignment to a field, and the class stays hashable as a
frozen one is. Use it only for records made on the step path that user code
does not hold as the store's own: a ``JournalEntry`` reaches it only as a copy
(``LocalRunner.journal``). Everything else stays ``@dataclass(frozen=True)``,
``BatchItem`` included, which a task's own code holds.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def frozen_record(cls: type[T]) -> type[T]:
    """``cls`` as a slotted dataclass, hashable by its fields, frozen to the type checker."""
    return dataclasses.dataclass(slots=True, unsafe_hash=True)(cls)
