"""LocalRunner: run tasks to completion in-process, for users' own unit tests."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

from durable_lambda.adapters.memory import memory_ports
from durable_lambda.client import RunHandle
from durable_lambda.engine.journal import EntryKind, JournalEntry
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.records import ResumeMessage, TimelineEvent
from durable_lambda.engine.resume import delay_until, plan_in
from durable_lambda.engine.retry import RandomSource
from durable_lambda.engine.state import RunStatus
from durable_lambda.errors import ConfigurationError, DurableLambdaError
from durable_lambda.ports import FlowStore, Ports, RunStore
from durable_lambda.result import RunResult
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import Task, TaskRegistry, default_registry
from durable_lambda.testing.clock import SkipClock
from durable_lambda.testing.deadline import DeadLetterBox, DeadlineStore, InvocationKilled
from durable_lambda.worker import Invocation, Report


class RunnerStalledError(DurableLambdaError):
    """The runner hit its invocation budget before the queue drained."""


class LocalRunner:
    """Runs tasks in-process, with waits skipped and an optional short Lambda deadline.

    Each resume message becomes one simulated invocation with ``deadline``
    seconds to live, so chaining across invocations happens in a unit test
    exactly as it does on Lambda. Waits and retry backoffs are skipped by the
    clock; step bodies take their real time.

    The deadline is enforced as Lambda enforces it: an invocation still
    running at its deadline is killed. Its next write (a step's record, the
    checkpoint) is refused, nothing of it is stored, and once the run's lease
    has expired the message is delivered again, so the step runs again in a
    fresh invocation. A message killed ``max_receive_count`` times (a step
    that can never fit) is dead-lettered and the run fails with an error
    naming the step, as the scheduler fails dead-lettered runs.

    Example::

        runner = LocalRunner(deadline=3.0)
        result = runner.run(process_order, {"order_id": "o-1"})
        assert result.ok
        assert runner.invocations[result.run_id] >= 2

    Args:
        registry: Where task ids are looked up (default: the process-wide registry).
        settings: Settings (default: defaults, not the environment, for repeatable tests).
        deadline: Seconds each simulated invocation may run (Lambda's timeout).
        store: Run store to use (default: in memory; pass a DynamoDB one to test on moto).
        flow: Flow-control store (queues, rate limits, cron) to use with ``store``
            (default: the memory store's own).
        clock: The clock (default: a :class:`SkipClock`).
        rng: Randomness for retry jitter (pass ``random.Random(0)`` to fix it).
        max_receive_count: Deliveries of one message killed at the deadline
            before it is dead-lettered (the stack's ``MaxReceiveCount``).
    """

    def __init__(
        self,
        *,
        registry: TaskRegistry | None = None,
        settings: Settings | None = None,
        deadline: float = 900.0,
        store: RunStore | None = None,
        flow: FlowStore | None = None,
        clock: SkipClock | None = None,
        rng: RandomSource | None = None,
        max_receive_count: int = 5,
    ) -> None:
        """Build the in-process stack."""
        if max_receive_count < 1:
            raise ConfigurationError(f"max_receive_count must be >= 1, got {max_receive_count}")
        self.settings = settings or Settings()
        self.clock = clock or SkipClock()
        self.deadline = deadline
        self.registry = registry or default_registry
        memory = memory_ports(self.settings, self.clock)
        self.store: RunStore = store or memory.store
        self.flow: FlowStore = flow or (memory.flow if store is None else _require_flow(store))
        self.queue = memory.queue
        self.max_receive_count = max_receive_count
        self.dead_letters = DeadLetterBox()
        self._deadline = DeadlineStore(self.store)
        ports = Ports(
            store=self._deadline,
            flow=self.flow,
            queue=self.queue,
            blobs=memory.blobs,
            clock=self.clock,
            dead_letters=self.dead_letters,
        )
        services = build_services(ports, self.registry, self.settings, rng=rng)
        self.admission = services.admission
        self.worker = services.worker
        self.client = services.client
        self.scheduler = services.scheduler
        self.invocations: Counter[str] = Counter()
        self.reports: list[Report] = []
        self._request_ids = itertools.count(1)
        # Kills per message (run id, epoch): SQS's receive count of that message.
        self._kills: Counter[tuple[str, int]] = Counter()

    def trigger(self, task: Task[Any, Any] | str, payload: Any, **options: Any) -> RunHandle:
        """Trigger a run (same options as :meth:`Client.trigger`) without running it."""
        return self.client.trigger(task, payload, **options)

    def run(self, task: Task[Any, Any] | str, payload: Any, **options: Any) -> RunResult:
        """Trigger a run and drive everything queued until the queue is empty."""
        handle = self.trigger(task, payload, **options)
        self.drain()
        result = self.client.result(handle.run_id)
        if result is None:
            run = self.client.get_run(handle.run_id)
            raise RunnerStalledError(f"run {handle.run_id} did not finish: {run.status}")
        return result

    def drain(self, max_invocations: int = 100_000) -> None:
        """Deliver resume messages (skipping time to each) until none is left.

        Raises:
            RunnerStalledError: More than ``max_invocations`` were needed.
        """
        for _ in range(max_invocations):
            if not self.step_once():
                return
        raise RunnerStalledError(f"queue not drained after {max_invocations} invocations")

    def step_once(self) -> bool:
        """Deliver the next due message (or fire the next timer); False when idle."""
        due = self.queue.next_due()
        if due is None:
            timers = self.store.due_timers(self.clock.now() + _FAR, limit=1)
            if not timers:
                return False
            self.clock.advance_to(timers[0].wake_at)
            self.scheduler.tick()
            return True
        self.clock.advance_to(due)
        for message in self.queue.receive(self.clock.now(), max_messages=1):
            self.reports.append(self.invoke_once(message.run_id, message.epoch, message.child))
        return True

    def invoke_once(self, run_id: str, epoch: int, child: str | None = None) -> Report:
        """One simulated Lambda invocation for a resume message (``child``: a nudge's child)."""
        expires = self.clock.monotonic() + self.deadline
        invocation = Invocation(
            request_id=f"local-{next(self._request_ids)}",
            remaining=lambda: expires - self.clock.monotonic(),
            timeout=self.deadline,
        )
        self._deadline.arm(invocation.remaining)
        try:
            report = self.worker.handle(ResumeMessage(run_id, epoch, child), invocation)
        except InvocationKilled as killed:
            self.invocations[run_id] += 1
            return self._killed(ResumeMessage(run_id, epoch, child), killed)
        finally:
            self._deadline.disarm()
        if report.action == "executed":
            self.invocations[run_id] += 1
        return report

    def _killed(self, message: ResumeMessage, killed: InvocationKilled) -> Report:
        """What SQS does with the message of a killed invocation: redeliver, or dead-letter."""
        self._kills[message.run_id, message.epoch] += 1
        kills = self._kills[message.run_id, message.epoch]
        reason = f"{killed.what} ran past the {self.deadline} s deadline in {kills} invocations"
        # The message stays invisible until its visibility timeout, which outlasts
        # the dead holder's lease: whatever happens to it next finds the run free.
        run = self.store.get_run(message.run_id)
        lease_expiry = run.lease_expiry if run is not None else None
        free_in = delay_until(lease_expiry, self.clock.now()) + 1
        if kills >= self.max_receive_count:
            self.clock.advance(free_in)
            self.store.note_delivery_error(message.run_id, reason)
            self.dead_letters.put(message, kills)
            self.scheduler.fail_dead_lettered_runs()
            return Report(message.run_id, Action.KILLED, RunStatus.FAILED, detail=reason)
        self.queue.send(message, plan_in(free_in).delay_seconds)  # SQS redelivery, capped
        return Report(message.run_id, Action.KILLED, detail=reason)

    def journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal entries."""
        return self.store.load_journal(run_id)

    def tree(self, run_id: str) -> dict[str, Any]:
        """The run and its child runs, recursively, as the parent's journal names them.

        Each node is ``{"run_id", "task_id", "status", "children": [...]}``.
        """
        run = self.client.get_run(run_id)
        children = [
            self.tree(child_id)
            for entry in self.journal(run_id)
            if entry.kind in (EntryKind.CHILD, EntryKind.CHILD_WAIT)
            for child_id in json.loads(entry.result or "{}").get("runs", [])
        ]
        return {
            "run_id": run.run_id,
            "task_id": run.task_id,
            "status": run.status.value,
            "children": children,
        }

    def timeline(self, run_id: str) -> list[TimelineEvent]:
        """The run's timeline events."""
        return self.store.list_events(run_id)


_FAR = __import__("datetime").timedelta(days=3650)


def _require_flow(store: RunStore) -> FlowStore:
    flow = getattr(store, "flow", None)
    if flow is None:
        raise TypeError("pass flow= with a store that has no flow-control store of its own")
    return flow  # type: ignore[no-any-return]
