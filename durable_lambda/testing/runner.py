"""LocalRunner: run tasks to completion in-process, for users' own unit tests."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from typing import Any

from durable_lambda.adapters.memory import memory_ports
from durable_lambda.adapters.memory.tables import MemoryTables
from durable_lambda.client import RunHandle
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.outcome import Action
from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage, TimelineEvent
from durable_lambda.engine.resume import delay_until, plan_in
from durable_lambda.engine.retry import RandomSource
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.tokens import TokenInfo, TokenStatus
from durable_lambda.errors import ConfigurationError, DurableLambdaError
from durable_lambda.ports import FlowStore, Ports, RunStore, TokenStore
from durable_lambda.result import RunResult
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import Task, TaskRegistry, default_registry
from durable_lambda.testing.clock import SkipClock
from durable_lambda.testing.deadline import DeadLetterBox, DeadlineStore, InvocationKilled
from durable_lambda.worker import Invocation, Report


class RunnerStalledError(DurableLambdaError):
    """The run cannot go on: blocked on wait tokens, or the invocation budget ran out."""


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

    Wait tokens: timed waits are skipped, token deadlines are not. A run
    waiting on a token blocks until the test completes it
    (:meth:`complete_token`, :meth:`fail_token`) or moves the clock past its
    deadline (:meth:`advance`); :meth:`start` returns once the run completes
    or blocks, :meth:`pending_tokens` lists what it waits on, and :meth:`run`
    on a run that blocks raises :class:`RunnerStalledError` naming the tokens.

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
        tokens: Token store to use with ``store`` (default: in memory).
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
        tokens: TokenStore | None = None,
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
            tokens=tokens or memory.tokens,
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
        # Messages of runs blocked on a token, due later: only advance() brings them.
        self._held: list[tuple[dt.datetime, ResumeMessage]] = []

    def trigger(self, task: Task[Any, Any] | str, payload: Any, **options: Any) -> RunHandle:
        """Trigger a run (same options as :meth:`Client.trigger`) without running it."""
        return self.client.trigger(task, payload, **options)

    def run(self, task: Task[Any, Any] | str, payload: Any, **options: Any) -> RunResult:
        """Trigger a run and drive everything queued until the queue is empty.

        Raises:
            RunnerStalledError: The run did not finish: it waits on wait tokens
                (named; use :meth:`start` and complete them), or it is stuck.
        """
        handle = self.start(task, payload, **options)
        result = self.client.result(handle.run_id)
        if result is None:
            pending = self.pending_tokens(handle.run_id)
            if pending:
                names = ", ".join(
                    f"{t.token_id}" + (f" ({t.name})" if t.name else "") for t in pending
                )
                raise RunnerStalledError(
                    f"run {handle.run_id} is blocked on wait tokens {names}: use start(), then "
                    "complete_token()/fail_token(), or advance() past their deadlines"
                )
            run = self.client.get_run(handle.run_id)
            raise RunnerStalledError(f"run {handle.run_id} did not finish: {run.status}")
        return result

    def start(self, task: Task[Any, Any] | str, payload: Any, **options: Any) -> RunHandle:
        """Trigger a run and drive it until it completes or blocks on a wait token."""
        handle = self.trigger(task, payload, **options)
        self.drain()
        return handle

    def result(self, run_id: str) -> RunResult | None:
        """The run's result once it has finished, else ``None`` (e.g. blocked on a token)."""
        return self.client.result(run_id)

    def pending_tokens(self, run_id: str) -> list[TokenInfo]:
        """The run's wait tokens still pending (id, name, timeout and heartbeat deadlines)."""
        tokens = self.client.tokens
        if tokens is None:
            return []
        ids = [
            json.loads(entry.result or "{}")["id"]
            for entry in self.journal(run_id)
            if entry.kind is EntryKind.TOKEN and entry.status is EntryStatus.COMPLETED
        ]
        found = [tokens.get(token_id) for token_id in ids]
        return [t for t in found if t is not None and t.status is TokenStatus.PENDING]

    def complete_token(self, token_id: str, data: Any = None) -> RunResult | None:
        """Complete a token and drive its run until it completes or blocks again.

        Returns:
            The run's result once finished, else ``None``.
        """
        token = self.client.complete_token(token_id, data)
        self.drain()
        return self.result(token.run_id)

    def fail_token(self, token_id: str, error_type: str, message: str = "") -> RunResult | None:
        """Fail a token (``TokenFailedError`` in the task) and drive its run as above."""
        token = self.client.fail_token(token_id, error_type, message)
        self.drain()
        return self.result(token.run_id)

    def heartbeat_token(self, token_id: str) -> TokenInfo:
        """Record a heartbeat on a token (its heartbeat deadline moves out); the token."""
        token = self.client.heartbeat_token(token_id)
        self.drain()
        return token

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead and fire what is due (token timeouts included)."""
        self.clock.advance(seconds)
        now = self.clock.now()
        due = [message for at, message in self._held if at <= now]
        self._held = [(at, message) for at, message in self._held if at > now]
        for message in due:
            self.queue.send(message, 0)
        self.drain()

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
        """Deliver the next due message (or fire the next timer); False when idle.

        Time is skipped to the next message or timer, except to wake a run
        blocked on a wait token: those wait for :meth:`advance`.
        """
        while (due := self.queue.next_due()) is not None:
            now = self.clock.now()
            (message,) = self.queue.receive(max(due, now), max_messages=1)
            # A nudge (a completion's wake-up, re-sent a second later when it
            # found the run still running) is never held back.
            nudge = message.epoch == ANY_EPOCH
            if due > now and not nudge and self._blocked_on_token(message.run_id):
                self._held.append((due, message))
                continue
            self.clock.advance_to(due)
            self.reports.append(self.invoke_once(message.run_id, message.epoch, message.child))
            return True
        now = self.clock.now()
        timers = [
            timer
            for timer in self.store.due_timers(now + _FAR, limit=100)
            if timer.wake_at <= now or not self._blocked_on_token(timer.run_id)
        ]
        if not timers:
            return False
        self.clock.advance_to(timers[0].wake_at)
        self.scheduler.tick()
        return True

    def _blocked_on_token(self, run_id: str) -> bool:
        """Whether the run sleeps until someone else acts: a token, or its children.

        A run suspended on what nudges it (a token resolved, a child ending)
        wakes by itself only at a token's deadline, or at a fallback or recheck
        time that exists for nudges lost in AWS, never here. Those wake-ups wait
        for :meth:`advance`; skipping to them would fire token timeouts early,
        or wake a parent of children blocked on tokens every hour forever. A
        timed wait or a retry's backoff due first is skipped to, as always.
        """
        run = self.store.get_run(run_id)
        if run is None or run.status is not RunStatus.SUSPENDED or run.wake_at is None:
            return False
        if not run.waiting_children:
            return False  # a timed wait or a backoff: skipped, as always
        journal = self.journal(run_id)
        if any(
            entry.kind in (EntryKind.WAIT, EntryKind.STEP)
            and entry.status in (EntryStatus.WAITING, EntryStatus.RETRYING)
            and entry.wake_at is not None
            and entry.wake_at <= run.wake_at
            for entry in journal
        ):
            return False
        waiting = [e for e in journal if e.status is EntryStatus.WAITING]
        if any(e.kind is EntryKind.TOKEN_WAIT for e in waiting):
            return True
        # Children still running will nudge it; if all have ended, their nudge
        # was lost (a test dropped it) and the fallback is how it recovers.
        children = [
            child
            for e in waiting
            if e.kind is EntryKind.CHILD_WAIT
            for child in json.loads(e.result or "{}").get("runs", [])
        ]
        return any(
            child is not None and not child.status.is_terminal
            for child in self.store.get_runs(children)
        )

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

    @property
    def tables(self) -> MemoryTables:
        """Your own DynamoDB tables in memory, which ``ctx.transact`` writes to.

        Create the tables your tasks write, seed them, run, read the items back::

            runner.tables.create("stock", key=("sku",))
            runner.tables.put("stock", {"sku": "a", "count": 2})
            runner.run(reserve, {"sku": "a"})
            assert runner.tables.get("stock", {"sku": "a"})["count"] == 1

        Raises:
            ConfigurationError: The runner stores runs on DynamoDB (``store=``):
                its transactions write your real (or moto) tables instead.
        """
        tables = getattr(self.store, "tables", None)
        if not isinstance(tables, MemoryTables):
            raise ConfigurationError(
                "runner.tables needs the memory store; with store= read your DynamoDB tables"
            )
        return tables

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
