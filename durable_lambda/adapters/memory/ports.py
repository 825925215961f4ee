"""The ports in memory, wired together: what ``LocalRunner`` and tests build services on."""

from __future__ import annotations

from dataclasses import dataclass

from durable_lambda.adapters.memory.blobs import MemoryBlobStore
from durable_lambda.adapters.memory.catalog import MemoryCatalogStore
from durable_lambda.adapters.memory.flow import MemoryFlowStore
from durable_lambda.adapters.memory.queue import MemoryResumeQueue
from durable_lambda.adapters.memory.runs import MemoryRunStore
from durable_lambda.adapters.memory.tokens import MemoryTokenStore
from durable_lambda.clock import SystemClock
from durable_lambda.ports import Clock, Ports
from durable_lambda.settings import Settings
from durable_lambda.values import ValueStore


@dataclass(frozen=True, slots=True)
class MemoryPorts(Ports):
    """The ports in memory, typed as their implementations (``LocalRunner``, tests)."""

    store: MemoryRunStore
    flow: MemoryFlowStore
    queue: MemoryResumeQueue
    blobs: MemoryBlobStore
    clock: Clock
    dead_letters: None = None
    tokens: MemoryTokenStore | None = None
    catalog: MemoryCatalogStore | None = None


def memory_ports(settings: Settings | None = None, clock: Clock | None = None) -> MemoryPorts:
    """Fresh ports in memory, with the value limits of ``settings`` (default: defaults).

    ``clock`` (default: the system clock) also times the queue's delays.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    blobs = MemoryBlobStore()
    values = ValueStore(blobs, settings.inline_limit, settings.max_value_bytes)
    store = MemoryRunStore(values)
    return MemoryPorts(
        store=store,
        flow=store.flow,
        queue=MemoryResumeQueue(clock.now),
        blobs=blobs,
        clock=clock,
        tokens=store.tokens,
        catalog=MemoryCatalogStore(),
    )
