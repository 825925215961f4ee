"""The one place that wires ports to the runtime's services: admission, worker, client, scheduler.

The Lambda handlers, the default client and ``LocalRunner`` all call
:func:`build_services`, so they cannot drift apart in how they are put together.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from durable_lambda.admission import Admission
from durable_lambda.client import Client
from durable_lambda.engine.retry import RandomSource
from durable_lambda.ports import Ports
from durable_lambda.scheduler import CronFirer, Scheduler
from durable_lambda.settings import Settings
from durable_lambda.task import TaskRegistry, default_registry
from durable_lambda.worker import Worker


@dataclass(frozen=True, slots=True)
class Services:
    """Everything that acts on runs, sharing one store, flow store, queue and clock."""

    admission: Admission
    worker: Worker
    client: Client
    scheduler: Scheduler


def build_services(
    ports: Ports,
    registry: TaskRegistry,
    settings: Settings,
    *,
    rng: RandomSource | None = None,
) -> Services:
    """Wire the services to ``ports``, looking tasks up in ``registry``.

    Args:
        ports: The backend (``memory_ports()`` or ``aws_ports(settings)``).
        registry: Where the worker, client and cron firer find tasks.
        settings: The runtime settings (safety margin, hop budget, stranded-run delay).
        rng: Randomness for retry jitter (default: the system's).
    """
    store, flow, queue, clock = ports.store, ports.flow, ports.queue, ports.clock
    admission = Admission(slots=flow, rates=flow, store=store, queue=queue, clock=clock)
    client = Client(
        store=store,
        queue=queue,
        clock=clock,
        registry=registry,
        slots=flow,
        admission=admission,
        tokens=ports.tokens,
        catalog=ports.catalog,
    )
    worker = Worker(
        store=store,
        queue=queue,
        registry=registry,
        settings=settings,
        clock=clock,
        rng=rng,
        admission=admission,
        client=client,
        tokens=ports.tokens,
    )
    scheduler = Scheduler(
        store=store,
        queue=queue,
        clock=clock,
        dead_letters=ports.dead_letters,
        admission=admission,
        cron=CronFirer(registry, flow, client, clock),
        stranded_after=dt.timedelta(seconds=settings.stranded_after_seconds),
    )
    return Services(admission, worker, client, scheduler)


#: The default clients built so far, by settings (a process rarely has more than one).
_default_clients: dict[Settings, Client] = {}
_default_clients_lock = threading.Lock()


def default_client(settings: Settings | None = None) -> Client:
    """The process's client on AWS for ``settings`` (default: from the environment).

    Building one costs a boto3 session, three clients and the services (a few
    hundred milliseconds), so it is built once per distinct settings and
    reused; ``Task.trigger`` reaches it through ``task.set_default_trigger``.
    Tasks are looked up in ``default_registry``.
    """
    settings = settings or Settings.from_env()
    with _default_clients_lock:
        client = _default_clients.get(settings)
        if client is None:
            from durable_lambda.adapters import aws  # noqa: PLC0415 - boto3 only once a client is used

            client = build_services(aws.aws_ports(settings), default_registry, settings).client
            _default_clients[settings] = client
        return client


def reset_default_client() -> None:
    """Forget the default clients: the next use builds afresh (tests, changed credentials)."""
    with _default_clients_lock:
        _default_clients.clear()
