"""The runtime's services wired to one set of ports: admission, worker, client, scheduler.

One place builds them, so the Lambda handlers, ``Client.default`` and
``LocalRunner`` cannot drift apart in how they are put together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from durable_lambda.admission import Admission
from durable_lambda.client import Client
from durable_lambda.engine.retry import RandomSource
from durable_lambda.ports import Clock, DeadLetters, FlowStore, ResumeQueue, RunStore
from durable_lambda.scheduler import CronFirer, Scheduler
from durable_lambda.settings import Settings
from durable_lambda.task import TaskRegistry
from durable_lambda.worker import Worker


@dataclass(frozen=True, slots=True)
class Services:
    """Everything that acts on runs, sharing one store, flow store, queue and clock."""

    admission: Admission
    worker: Worker
    client: Client
    scheduler: Scheduler

    @classmethod
    def build(
        cls,
        *,
        store: RunStore,
        flow: FlowStore,
        queue: ResumeQueue,
        clock: Clock,
        registry: TaskRegistry,
        settings: Settings,
        dead_letters: DeadLetters | None = None,
        rng: RandomSource | None = None,
    ) -> Services:
        """Wire the services to the ports."""
        admission = Admission(slots=flow, rates=flow, store=store, queue=queue, clock=clock)
        worker = Worker(
            store=store,
            queue=queue,
            registry=registry,
            settings=settings,
            clock=clock,
            rng=rng,
            admission=admission,
        )
        client = Client(
            store=store,
            queue=queue,
            clock=clock,
            registry=registry,
            slots=flow,
            admission=admission,
        )
        scheduler = Scheduler(
            store=store,
            queue=queue,
            clock=clock,
            dead_letters=dead_letters,
            admission=admission,
            cron=CronFirer(registry, flow, client, clock),
            stranded_after=dt.timedelta(seconds=settings.stranded_after_seconds),
        )
        return cls(admission, worker, client, scheduler)
