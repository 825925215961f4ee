"""Client: trigger runs and read them back, from any Python process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from durable_lambda import serde
from durable_lambda.admission import Admission
from durable_lambda.catalog import CatalogStore, CatalogTask
from durable_lambda.client_control import QueueControl, RunControl, TokenControl
from durable_lambda.engine.metadata import encode_values
from durable_lambda.engine.records import (
    EventKind,
    ResumeMessage,
    RunQuery,
    RunRecord,
    TimelineEvent,
    Timer,
)
from durable_lambda.engine.resume import plan_in
from durable_lambda.engine.slots import validate_priority
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import (
    ConfigurationError,
    DurableLambdaError,
    PayloadTooLarge,
    PayloadValidationError,
    RunNotFoundError,
    UnknownTaskError,
)
from durable_lambda.ids import new_run_id
from durable_lambda.messages import send_resume
from durable_lambda.plugins import emit, info_of
from durable_lambda.ports import Clock, ResumeQueue, RunStore, SlotStore, TokenStore
from durable_lambda.replays import replay_run
from durable_lambda.result import RunResult
from durable_lambda.task import RunHandle, Task, TaskRegistry, default_registry

__all__ = ["MAX_KEY_LENGTH", "MAX_TAGS", "MAX_TAG_LENGTH", "Client", "RunHandle"]

MAX_TAGS = 10
MAX_TAG_LENGTH = 128
MAX_KEY_LENGTH = 256
#: How long a catalog entry read to trigger by id is reused before it is read again.
CATALOG_CACHE_SECONDS = 60.0


def _seconds(value: dt.timedelta | float | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds < 0:
        raise ConfigurationError(f"{name} must be >= 0 seconds, got {seconds}")
    return seconds


def _check_options(
    tags: Sequence[str], idempotency_key: str | None, concurrency_key: str | None
) -> None:
    if len(tags) > MAX_TAGS:
        raise ConfigurationError(f"tags: at most {MAX_TAGS} tags, got {len(tags)}")
    for tag in tags:
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise ConfigurationError(
                f"tags: each tag must be 1-{MAX_TAG_LENGTH} characters, got {tag!r}"
            )
    for name, key in (("idempotency_key", idempotency_key), ("concurrency_key", concurrency_key)):
        if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
            raise ConfigurationError(f"{name} must be 1-{MAX_KEY_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class _NewRun:
    """A run about to be created: its record, its key's ttl and its start delay."""

    run: RunRecord
    key_ttl: dt.timedelta | None
    delay: float


#: What a run can be created for: a task whose code is imported, or a catalog entry.
Definition = Task[Any, Any] | CatalogTask


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One item of :meth:`Client.trigger_batch`: its run, or why it has none.

    Attributes:
        handle: The run (``cached``: its idempotency key named an earlier run).
        run: The run as stored (for a cached one, the earlier run: compare its payload).
        error: Why the item was refused (nothing was created for it).
    """

    handle: RunHandle | None = None
    run: RunRecord | None = None
    error: DurableLambdaError | None = None


def _share_first_runs(
    items: Sequence[Mapping[str, Any]], first_of_key: dict[str, int], outcomes: list[BatchOutcome]
) -> None:
    """Give each item repeating an earlier item's idempotency key that item's run."""
    for i, item in enumerate(items):
        key = item.get("idempotency_key")
        first = first_of_key.get(key) if isinstance(key, str) else None
        if first is None or first == i or outcomes[i].error is not None:
            continue
        done = outcomes[first]
        if done.handle is not None:
            handle = RunHandle(done.handle.run_id, done.handle.task_id, cached=True)
            outcomes[i] = BatchOutcome(handle, done.run)


class Client(RunControl, TokenControl, QueueControl):
    """Triggers runs and reads their state."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: ResumeQueue,
        clock: Clock,
        registry: TaskRegistry | None = None,
        slots: SlotStore | None = None,
        admission: Admission | None = None,
        tokens: TokenStore | None = None,
        catalog: CatalogStore | None = None,
    ) -> None:
        """Wire the client to its ports (``slots``/``admission`` for queue control, ``tokens``).

        With a ``catalog``, a task id not registered in this process is looked
        up there and its payload validated against the stored schema.
        """
        self.store = store
        self.queue = queue
        self.clock = clock
        self.registry = registry or default_registry
        self.slots = slots
        self.admission = admission
        self.tokens = tokens
        self.catalog = catalog
        self._catalogued: dict[str, tuple[float, CatalogTask]] = {}

    def trigger(
        self,
        task: Task[Any, Any] | str,
        payload: Any,
        *,
        idempotency_key: str | None = None,
        idempotency_key_ttl: dt.timedelta | float | None = None,
        delay: dt.timedelta | float | None = None,
        ttl: dt.timedelta | float | None = None,
        tags: Sequence[str] = (),
        concurrency_key: str | None = None,
        priority: int = 0,
        queue: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunHandle:
        """Start a run of ``task`` with ``payload``.

        The payload is validated first: an invalid one raises
        ``PayloadValidationError`` naming the fields, and no run is created.

        Args:
            task: The task, or its id: registered in this process, else found in
                the task catalog (its payload checked against the stored schema).
            payload: The payload; validated against the task's annotation.
            idempotency_key: A second trigger with the same key returns the first run.
            idempotency_key_ttl: How long the key is remembered (default: forever).
            delay: Start no earlier than this many seconds from now.
            ttl: A run not started within this many seconds ends EXPIRED.
            tags: Up to 10 labels.
            concurrency_key: Its own concurrency limit on the queue (e.g. a tenant).
            priority: Higher starts first within the queue.
            queue: Override the task's queue name.
            metadata: The run's initial metadata (``ctx.metadata`` reads and changes it).
        """
        return self._create(
            task,
            payload,
            None,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            delay=delay,
            ttl=ttl,
            tags=tags,
            concurrency_key=concurrency_key,
            priority=priority,
            queue=queue,
            metadata=metadata,
        )

    def trigger_batch(
        self, task: Task[Any, Any] | str, items: Sequence[Mapping[str, Any]]
    ) -> list[BatchOutcome]:
        """Start one run per item (``{"payload": ..., **trigger options}``), refusing items alone.

        Items are validated one by one: a refused item gets its error and
        nothing is created for it; the others are created in batched writes
        (``RunStore.create_runs``) and their messages sent in batches. An item
        repeating an idempotency key of an earlier item gets that item's run.
        """
        definition = task if isinstance(task, Task) else self.definition(task)
        outcomes: list[BatchOutcome] = [BatchOutcome() for _ in items]
        first_of_key: dict[str, int] = {}
        fresh: list[tuple[int, _NewRun]] = []
        for i, item in enumerate(items):
            options = {k: v for k, v in item.items() if k != "payload"}
            try:
                new = self._new_run(definition, item.get("payload"), None, **options)
            except (PayloadValidationError, PayloadTooLarge, ConfigurationError) as exc:
                outcomes[i] = BatchOutcome(error=exc)
                continue
            key = new.run.idempotency_key
            if key is not None and key in first_of_key:
                continue  # resolved to the first item's run below
            if key is not None:
                first_of_key[key] = i
            fresh.append((i, new))
        by_ttl: dict[dt.timedelta | None, list[tuple[int, _NewRun]]] = {}
        for i, new in fresh:
            by_ttl.setdefault(new.key_ttl, []).append((i, new))
        for key_ttl, group in by_ttl.items():
            runs = [new.run for _, new in group]
            stored = self.store.create_runs(runs, [self._triggered(r, None) for r in runs], key_ttl)
            for (i, new), got in zip(group, stored, strict=True):
                cached = got.run_id != new.run.run_id
                outcomes[i] = BatchOutcome(RunHandle(got.run_id, got.task_id, cached), got)
            self._start(
                [
                    new
                    for (_, new), got in zip(group, stored, strict=True)
                    if got.run_id == new.run.run_id
                ]
            )
        _share_first_runs(items, first_of_key, outcomes)
        return outcomes

    def _start(self, created: Sequence[_NewRun]) -> None:
        """Send the first messages of ``created`` runs: batched per delay, timers beyond SQS's."""
        by_delay: dict[float, list[RunRecord]] = {}
        for new in created:
            by_delay.setdefault(new.delay, []).append(new.run)
            _triggered_event(new.run)
        for delay, runs in by_delay.items():
            resume = plan_in(delay)
            if resume.timer:
                for run in runs:
                    self.store.add_timer(
                        Timer(run.run_id, run.epoch, run.wake_at or run.created_at)
                    )
                continue
            messages = [ResumeMessage(run.run_id, run.epoch) for run in runs]
            self.queue.send_batch(messages, resume.delay_seconds)

    def trigger_children(
        self,
        task: Task[Any, Any],
        payloads: Sequence[Any],
        *,
        parent: RunRecord,
        keys: Sequence[str],
        **options: Any,
    ) -> list[RunHandle]:
        """Start child runs of ``parent`` (the worker's launcher; tasks call ``Task.trigger``).

        Each child's record links to its parent, the parent's root and its
        depth; its idempotency key (``keys``, derived from the parent's call)
        makes a re-executed trigger find the same child. The runs are created
        in batched writes (``RunStore.create_runs``) and their messages sent in
        batches (``ResumeQueue.send_batch``).
        """
        definition = task
        link = (parent.run_id, parent.root_run_id or parent.run_id, parent.depth + 1)
        built = [
            self._new_run(definition, payload, link, idempotency_key=key, **options)
            for payload, key in zip(payloads, keys, strict=True)
        ]
        # Siblings of one call: their parent counts their ends (see RunRecord.batched).
        runs = [replace(b.run, batched=len(built) > 1) for b in built]
        key_ttl = built[0].key_ttl if built else None
        events = [self._triggered(run, link) for run in runs]
        stored = self.store.create_runs(runs, events, key_ttl)
        created = [run for run, got in zip(runs, stored, strict=True) if got.run_id == run.run_id]
        for run in created:
            _triggered_event(run)
        delay = built[0].delay if built else 0.0
        resume = plan_in(delay)
        for run in created if resume.timer else ():
            self.store.add_timer(Timer(run.run_id, run.epoch, run.wake_at or run.created_at))
        if not resume.timer:
            messages = [ResumeMessage(run.run_id, run.epoch) for run in created]
            self.queue.send_batch(messages, resume.delay_seconds)
        return [
            RunHandle(got.run_id, got.task_id, cached=got.run_id != run.run_id)
            for run, got in zip(runs, stored, strict=True)
        ]

    def _create(
        self,
        task: Task[Any, Any] | str,
        payload: Any,
        link: tuple[str, str, int] | None,
        **options: Any,
    ) -> RunHandle:
        definition = task if isinstance(task, Task) else self.definition(task)
        new = self._new_run(definition, payload, link, **options)
        run = new.run
        # The TRIGGERED event rides in the create's request: a trigger is one write and one send.
        stored = self.store.create_run(run, new.key_ttl, [self._triggered(run, link)])
        if stored.run_id != run.run_id:
            return RunHandle(stored.run_id, stored.task_id, cached=True)
        _triggered_event(run)
        resume = plan_in(new.delay)
        if resume.timer:
            self.store.add_timer(Timer(run.run_id, run.epoch, run.wake_at or run.created_at))
        send_resume(self.queue, ResumeMessage(run.run_id, run.epoch), resume)
        return RunHandle(run.run_id, definition.id)

    def definition(self, task_id: str) -> Definition:
        """The task ``task_id``: registered in this process, else from the catalog.

        Raises:
            UnknownTaskError: Neither knows it (the message lists the known ids).
        """
        if task_id in self.registry.ids() or self.catalog is None:
            return self.registry.get(task_id)
        now = self.clock.monotonic()
        cached = self._catalogued.get(task_id)
        if cached is not None and now - cached[0] < CATALOG_CACHE_SECONDS:
            return cached[1]
        description = self.catalog.get(task_id)
        if description is None:
            raise UnknownTaskError(
                f"no task {task_id!r} is registered or catalogued "
                f"(known: {', '.join(self.known_task_ids()) or 'none'})"
            )
        found = CatalogTask(description)
        self._catalogued[task_id] = (now, found)
        return found

    def known_task_ids(self) -> list[str]:
        """The ids of the tasks this client can trigger: registered and catalogued."""
        ids = set(self.registry.ids())
        if self.catalog is not None:
            ids.update(d.task_id for d in self.catalog.list())
        return sorted(ids)

    def _new_run(
        self,
        definition: Definition,
        payload: Any,
        link: tuple[str, str, int] | None,
        *,
        idempotency_key: str | None = None,
        idempotency_key_ttl: dt.timedelta | float | None = None,
        delay: dt.timedelta | float | None = None,
        ttl: dt.timedelta | float | None = None,
        tags: Sequence[str] = (),
        concurrency_key: str | None = None,
        priority: int = 0,
        queue: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> _NewRun:
        """The record of a run to create, its options checked and its payload validated."""
        tags = tuple(tags)
        _check_options(tags, idempotency_key, concurrency_key)
        try:
            validate_priority(int(priority))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        delay_s = _seconds(delay, "delay") or 0.0
        ttl_s = _seconds(ttl, "ttl")
        key_ttl_s = _seconds(idempotency_key_ttl, "idempotency_key_ttl")
        encoded = definition.encode_payload(payload)
        if metadata:
            encode_values(metadata)  # refuses a document above the metadata limit
        now = self.clock.now()
        run = RunRecord(
            run_id=new_run_id(),
            task_id=definition.id,
            status=RunStatus.QUEUED,
            payload=encoded,
            created_at=now,
            updated_at=now,
            wake_at=now + dt.timedelta(seconds=delay_s) if delay_s else None,
            queue=queue or definition.queue.name,
            concurrency_key=concurrency_key,
            priority=int(priority),
            tags=tags,
            idempotency_key=idempotency_key,
            expires_at=now + dt.timedelta(seconds=ttl_s) if ttl_s is not None else None,
            parent_run_id=link[0] if link else None,
            root_run_id=link[1] if link else None,
            depth=link[2] if link else 0,
            metadata=dict(metadata or {}),
        )
        key_ttl = dt.timedelta(seconds=key_ttl_s) if key_ttl_s is not None else None
        return _NewRun(run, key_ttl, delay_s)

    @staticmethod
    def _triggered(run: RunRecord, link: tuple[str, str, int] | None) -> TimelineEvent:
        by = f" by run {link[0]}" if link else ""
        return TimelineEvent(run.created_at, EventKind.TRIGGERED, f"task {run.task_id}{by}")

    def replay(self, run_id: str, payload: Any = None, from_step: str | None = None) -> RunHandle:
        """Start a new run of ``run_id``'s task, linked to it (``replay_of``).

        Args:
            run_id: The run to replay (finished or not).
            payload: A new payload, validated as a trigger's; ``None`` keeps the original's.
            from_step: Copy the original's journal before this step (a name, its
                first occurrence in journal order, or an identity such as
                ``charge#1`` or ``t0/charge#0``): those calls are not executed
                again and keep their recorded results, even with a new payload.

        Raises:
            RunNotFoundError: No such run.
            UnknownStepError: ``from_step`` names no step of its journal (the
                error lists those that exist); nothing was written.
            UnknownTaskError: Its task is neither registered nor catalogued.
            PayloadValidationError: The new payload is invalid; nothing was written.
        """
        return replay_run(self, run_id, payload, from_step)

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record.

        Raises:
            RunNotFoundError: No such run.
        """
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return run

    def result(self, run_id: str) -> RunResult | None:
        """The run's result once it has finished, else ``None``."""
        run = self.get_run(run_id)
        if not run.status.is_terminal:
            return None
        output = None
        if run.output is not None:
            task = self.registry.get(run.task_id) if run.task_id in self.registry.ids() else None
            output = serde.decode(run.output, task.output_type if task else None)
        return RunResult(run_id=run.run_id, status=run.status, output=output, error=run.error)

    def list_runs(self, query: RunQuery | None = None) -> list[RunRecord]:
        """Runs newest first."""
        return self.store.list_runs(query or RunQuery())


def _triggered_event(run: RunRecord) -> None:
    """Tell the plugins a run was created (a trigger that found an existing run creates none)."""
    emit("on_run_triggered", info_of(run, first_invocation=True))
