"""``ctx.transact`` on the memory backend: writes commit with the step record, exactly once."""

from __future__ import annotations

import pytest

from durable_lambda import (
    ConfigurationError,
    RetryPolicy,
    RunStatus,
    TaskContext,
    Transaction,
    task,
    wait,
)
from durable_lambda.adapters.memory import MemoryRunStore
from durable_lambda.adapters.memory.blobs import MemoryBlobStore
from durable_lambda.engine.journal import EntryStatus
from durable_lambda.errors import TransactionConditionFailed
from durable_lambda.testing import LocalRunner
from durable_lambda.testing.deadline import InvocationKilled
from durable_lambda.transact import Condition
from durable_lambda.values import ValueStore

NO_JITTER = RetryPolicy(max_attempts=3, randomize=False)


def reserve(tx: Transaction, sku: str, order: str) -> str:
    tx.update(
        "stock", {"sku": sku}, add={"count": -1}, condition=Condition.compare("count", ">", 0)
    )
    tx.put("orders", {"order": order, "sku": sku}, condition=Condition.absent())
    return f"reserved {sku} for {order}"


def _stocked(runner: LocalRunner, count: int = 2) -> None:
    runner.tables.create("stock", key=("sku",))
    runner.tables.create("orders", key=("order",))
    runner.tables.put("stock", {"sku": "a", "count": count})


def test_writes_commit_with_the_record_and_the_result_replays(registry, runner):
    bodies: list[str] = []

    def counted(tx: Transaction, sku: str, order: str) -> str:
        bodies.append(order)
        return reserve(tx, sku, order)

    @task(id="tx-reserve", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        done = await ctx.transact("reserve", counted, "a", payload)
        await wait.for_(hours=1)  # the replay after it returns the recorded result
        return done

    _stocked(runner)
    result = runner.run(run, "o-1")
    assert result.output == "reserved a for o-1"
    assert bodies == ["o-1"]
    assert runner.invocations[result.run_id] == 2
    assert runner.tables.get("stock", {"sku": "a"}) == {"sku": "a", "count": 1}
    assert runner.tables.items("orders") == [{"order": "o-1", "sku": "a"}]
    [entry, _] = runner.journal(result.run_id)
    assert (entry.key, entry.status, entry.attempts) == ("reserve#0", EntryStatus.COMPLETED, 1)


def test_an_async_body_and_every_kind_of_write(registry, runner):
    async def rework(tx: Transaction) -> int:
        tx.condition_check("stock", {"sku": "a"}, Condition.exists())
        tx.update("stock", {"sku": "b"}, set={"count": 5, "tags": ["new"]}, remove=["old"])
        tx.delete("stock", {"sku": "c"}, condition=[Condition.exists("count")])
        tx.put("orders", {"order": "o-9", "total": 1.5})
        return 4

    @task(id="tx-kinds", registry=registry)
    async def run(payload: None, ctx: TaskContext) -> int:
        return await ctx.transact("rework", rework)

    _stocked(runner)
    runner.tables.put("stock", {"sku": "b", "count": 1, "old": True})
    runner.tables.put("stock", {"sku": "c", "count": 0})
    assert runner.run(run, None).output == 4
    assert runner.tables.get("stock", {"sku": "b"}) == {"sku": "b", "count": 5, "tags": ["new"]}
    assert runner.tables.get("stock", {"sku": "c"}) is None
    assert runner.tables.get("orders", {"order": "o-9"}) == {"order": "o-9", "total": 1.5}


def test_a_failed_condition_names_the_item_writes_nothing_and_is_retried_per_policy(
    registry, runner
):
    attempts: list[int] = []

    def counted(tx: Transaction, sku: str, order: str) -> str:
        attempts.append(1)
        return reserve(tx, sku, order)

    @task(id="tx-sold-out", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        return await ctx.transact("reserve", counted, "a", payload, retry=NO_JITTER)

    _stocked(runner, count=0)
    result = runner.run(run, "o-1")
    assert result.status is RunStatus.FAILED
    assert len(attempts) == 3  # the step's policy: three attempts
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 3)
    assert entry.error is not None
    assert entry.error.type.endswith("TransactionConditionFailed")
    assert "table 'stock' key {'sku': 'a'}" in entry.error.message
    assert runner.tables.get("stock", {"sku": "a"}) == {"sku": "a", "count": 0}
    assert runner.tables.items("orders") == []  # the put beside it was not written either


def test_a_condition_that_holds_on_a_later_attempt_commits_then(registry, runner):
    attempts: list[int] = []

    def restocking(tx: Transaction, sku: str, order: str) -> str:
        attempts.append(1)
        if len(attempts) == 2:
            runner.tables.put("stock", {"sku": "a", "count": 1})  # restocked from outside
        return reserve(tx, sku, order)

    @task(id="tx-restock", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        return await ctx.transact("reserve", restocking, "a", payload, retry=NO_JITTER)

    _stocked(runner, count=0)
    assert runner.run(run, "o-2").output == "reserved a for o-2"
    assert len(attempts) == 2
    assert runner.tables.get("stock", {"sku": "a"}) == {"sku": "a", "count": 0}


def test_the_task_catches_the_failure_as_a_step_failure(registry, runner):
    @task(id="tx-caught", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        try:
            return await ctx.transact(
                "reserve", reserve, "a", payload, retry=RetryPolicy(max_attempts=1)
            )
        except Exception as exc:  # noqa: BLE001 - the task decides what a sold-out means
            return type(exc).__name__

    _stocked(runner, count=0)
    assert runner.run(run, "o-3").output == "StepFailedError"


class CrashAfterCommit(MemoryRunStore):
    """Commits a transaction, then dies as a SIGKILL would before the invocation learns it."""

    def __init__(self) -> None:
        super().__init__(ValueStore(MemoryBlobStore(), 64 * 1024, 1024 * 1024))
        self.crashes = 0

    def record_transaction(self, run_id, fence, entry, writes, metadata=None) -> None:
        super().record_transaction(run_id, fence, entry, writes, metadata)
        if self.crashes == 0:
            self.crashes += 1
            raise InvocationKilled(f"step {entry.key!r} after its commit", 0.0)


def test_a_crash_between_commit_and_return_applies_the_writes_once(registry):
    store = CrashAfterCommit()
    runner = LocalRunner(registry=registry, store=store, flow=store.flow)
    bodies: list[str] = []

    def counted(tx: Transaction, sku: str, order: str) -> str:
        bodies.append(order)
        tx.update("stock", {"sku": sku}, add={"count": -1})
        return order

    @task(id="tx-crash", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        return await ctx.transact("reserve", counted, "a", payload)

    _stocked(runner, count=5)
    result = runner.run(run, "o-4")
    assert store.crashes == 1
    assert [r.action for r in runner.reports][:1] == ["killed"]
    assert result.output == "o-4"
    assert bodies == ["o-4"]  # the redelivery replayed the record: no second body, no second write
    assert runner.tables.get("stock", {"sku": "a"}) == {"sku": "a", "count": 4}


@pytest.mark.parametrize(
    ("describe", "limit"),
    [
        (
            lambda tx: [tx.put("t", {"k": str(i)}) for i in range(99)],
            "writes: 99, above the limit of 98",
        ),
        (lambda tx: tx.put("t", {"k": "x", "blob": "x" * 410_000}), "above the limit of 409600"),
        (
            lambda tx: [tx.put("t", {"k": str(i), "v": "x" * 390_000}) for i in range(10)],
            "bytes of all writes",
        ),
    ],
)
def test_limits_exceeded_fail_the_step_at_once_and_write_nothing(registry, runner, describe, limit):
    def big(tx: Transaction) -> None:
        describe(tx)

    @task(id="tx-limits", registry=registry, retry=RetryPolicy(max_attempts=3))
    async def run(payload: None, ctx: TaskContext) -> None:
        await ctx.transact("big", big)

    runner.tables.create("t", key=("k",))
    result = runner.run(run, None)
    assert result.status is RunStatus.FAILED
    [entry] = runner.journal(result.run_id)
    assert (entry.status, entry.attempts) == (EntryStatus.FAILED, 1)  # terminal: not retried
    assert entry.error is not None
    assert entry.error.type.endswith("TransactionLimitError")
    assert limit in entry.error.message
    assert runner.tables.items("t") == []


def test_98_writes_fit(registry, runner):
    def many(tx: Transaction) -> int:
        for i in range(98):
            tx.put("t", {"k": str(i)})
        return 98

    @task(id="tx-98", registry=registry)
    async def run(payload: None, ctx: TaskContext) -> int:
        return await ctx.transact("many", many)

    runner.tables.create("t", key=("k",))
    assert runner.run(run, None).output == 98
    assert len(runner.tables.items("t")) == 98


@pytest.mark.parametrize(
    ("describe", "message"),
    [
        (lambda tx: tx.put("", {"k": 1}), "table name must be a non-empty string"),
        (lambda tx: tx.put("t", {}), "must name at least one attribute"),
        (lambda tx: tx.put("t", {"k": object()}), "DynamoDB values are"),
        (lambda tx: tx.put("t", {"k": 1, "n": float("nan")}), "DynamoDB numbers are finite"),
        (lambda tx: tx.update("t", {"k": 1}), "at least one of set=, add=, remove="),
        (lambda tx: tx.update("t", {"k": 1}, add={"n": "1"}), "must be a number"),
        (lambda tx: tx.update("t", {"k": 1}, set={"n": 1}, remove=["n"]), "twice"),
        (lambda tx: tx.condition_check("t", {"k": 1}, None), "needs a condition"),
        (lambda tx: [tx.delete("t", {"k": 1}), tx.delete("t", {"k": 1})], "written twice"),
        (lambda tx: tx.delete("t", {"k": 1}, condition="absent"), "must be a Condition"),
    ],
)
def test_malformed_writes_are_refused_at_the_call(describe, message):
    with pytest.raises(ConfigurationError) as info:
        describe(Transaction())
    assert message in str(info.value)


def test_a_bad_comparison_operator_is_refused():
    with pytest.raises(ConfigurationError, match="op must be one of"):
        Condition.compare("n", "==", 1)  # type: ignore[arg-type]


def test_memory_tables_need_creating_and_their_keys():
    runner = LocalRunner()
    with pytest.raises(ConfigurationError, match="does not exist in memory"):
        runner.tables.get("nope", {"k": 1})
    runner.tables.create("t", key=("pk", "sk"))
    with pytest.raises(ConfigurationError, match="exactly its key attributes"):
        runner.tables.get("t", {"pk": 1})
    with pytest.raises(ConfigurationError, match="one or two attribute names"):
        runner.tables.create("u", key=())


def test_condition_failed_error_names_table_and_key():
    error = TransactionConditionFailed("stock", {"sku": "a"}, 0)
    assert (error.table, error.key, error.index) == ("stock", {"sku": "a"}, 0)
    assert "table 'stock' key {'sku': 'a'}" in str(error)


def test_seeding_a_table_never_created_is_a_clear_error():
    runner = LocalRunner()
    with pytest.raises(ConfigurationError, match="'stock' does not exist in memory"):
        runner.tables.put("stock", {"sku": "a"})
