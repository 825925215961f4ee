"""Transactional steps on both backends: the user's writes commit with the step record, or nothing.

``record_transaction`` is one ``TransactWriteItems`` on DynamoDB (the fence,
the journal put, the user's writes) and one locked change in memory; the same
facts must hold on both: all or nothing, a failed condition names the item,
a stale or duplicate commit writes nothing, and a retried commit whose first
try was applied is accepted without applying the user's writes twice.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from contract_backends import Backend, at
from faults import Fault

from durable_lambda import RunStatus, TaskContext, Transaction, task
from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.transaction import TableWrite
from durable_lambda.errors import ConfigurationError, LeaseLostError, TransactionConditionFailed
from durable_lambda.task import TaskRegistry
from durable_lambda.testing import LocalRunner
from durable_lambda.transact import Condition

OWNER = "owner-a"
AMBIGUOUS = [Fault.APPLIED_THEN_TIMEOUT, Fault.APPLIED_THEN_5XX]


def entry(seq: int = 0) -> JournalEntry:
    return JournalEntry(seq, "reserve", seq, EntryKind.STEP, EntryStatus.COMPLETED, result='"ok"')


def create_table(backend: Backend, name: str, key: tuple[str, ...]) -> None:
    if backend.name == "memory":
        backend.store.tables.create(name, key=key)  # type: ignore[attr-defined]
        return
    client = backend.extra["session"].client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
            for i, k in enumerate(key)
        ],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in key],
        BillingMode="PAY_PER_REQUEST",
    )


def read(backend: Backend, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    if backend.name == "memory":
        return backend.store.tables.get(name, key)  # type: ignore[attr-defined,no-any-return]
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # noqa: PLC0415

    client = backend.extra["session"].client("dynamodb")
    serialize, deserialize = TypeSerializer().serialize, TypeDeserializer().deserialize
    got = client.get_item(
        TableName=name, Key={k: serialize(v) for k, v in key.items()}, ConsistentRead=True
    )
    item = got.get("Item")
    if item is None:
        return None
    return {k: _plain(deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def seed(backend: Backend) -> str:
    create_table(backend, "stock", ("sku",))
    create_table(backend, "orders", ("order",))
    run = backend.new_run()
    backend.store.take_lease(run.run_id, 0, OWNER, at(300), at(10))
    backend.store.record_transaction(  # type: ignore[attr-defined]
        run.run_id,
        _fence(),
        JournalEntry(0, "seed", 0, EntryKind.STEP, EntryStatus.COMPLETED, result="null"),
        [TableWrite("put", "stock", item={"sku": "a", "count": 2, "label": "first"})],
    )
    return run.run_id


def _fence() -> Any:
    from durable_lambda.engine.records import Fence  # noqa: PLC0415

    return Fence(OWNER, 0)


RESERVE = [
    TableWrite(
        "update",
        "stock",
        key={"sku": "a"},
        add={"count": -1},
        conditions=(Condition.compare("count", ">", 0),),
    ),
    TableWrite(
        "put", "orders", item={"order": "o-1", "sku": "a"}, conditions=(Condition.absent(),)
    ),
]


def test_the_record_and_the_writes_commit_together(backend: Backend):
    run_id = seed(backend)
    backend.store.record_transaction(run_id, _fence(), entry(1), RESERVE)  # type: ignore[attr-defined]
    assert [e.seq for e in backend.store.load_journal(run_id)] == [0, 1]
    assert read(backend, "stock", {"sku": "a"}) == {"sku": "a", "count": 1, "label": "first"}
    assert read(backend, "orders", {"order": "o-1"}) == {"order": "o-1", "sku": "a"}


def test_every_kind_of_write_applies(backend: Backend):
    run_id = seed(backend)
    writes = [
        TableWrite("condition_check", "stock", key={"sku": "a"}, conditions=(Condition.exists(),)),
        TableWrite("update", "stock", key={"sku": "b"}, set={"count": 5, "f": 1.5}),
        TableWrite("update", "orders", key={"order": "o-0"}, set={"x": 1}),
    ]
    backend.store.record_transaction(run_id, _fence(), entry(1), writes)  # type: ignore[attr-defined]
    assert read(backend, "stock", {"sku": "b"}) == {"sku": "b", "count": 5, "f": 1.5}
    removal = [
        TableWrite("update", "stock", key={"sku": "b"}, remove=("f",)),
        TableWrite("delete", "orders", key={"order": "o-0"}, conditions=(Condition.exists("x"),)),
    ]
    backend.store.record_transaction(run_id, _fence(), entry(2), removal)  # type: ignore[attr-defined]
    assert read(backend, "stock", {"sku": "b"}) == {"sku": "b", "count": 5}
    assert read(backend, "orders", {"order": "o-0"}) is None


@pytest.mark.parametrize(
    ("writes", "named"),
    [
        # An update's condition, then a put's (its key comes from the table's key schema).
        ([RESERVE[0], RESERVE[1]], ("stock", {"sku": "a"}, 0)),
        (
            [
                RESERVE[1],
                TableWrite("put", "stock", item={"sku": "a"}, conditions=(Condition.absent(),)),
            ],
            ("stock", {"sku": "a"}, 1),
        ),
        (
            [
                TableWrite(
                    "delete",
                    "stock",
                    key={"sku": "a"},
                    conditions=(Condition.compare("label", "<>", "first"),),
                )
            ],
            ("stock", {"sku": "a"}, 0),
        ),
        (
            [
                TableWrite(
                    "condition_check", "stock", key={"sku": "z"}, conditions=(Condition.exists(),)
                )
            ],
            ("stock", {"sku": "z"}, 0),
        ),
    ],
)
def test_a_failed_condition_names_the_item_and_writes_nothing(
    backend: Backend, writes: list[TableWrite], named: tuple[str, dict[str, str], int]
):
    run_id = seed(backend)
    if writes[0] is RESERVE[0]:
        backend.store.record_transaction(  # type: ignore[attr-defined]
            run_id,
            _fence(),
            entry(1),
            [TableWrite("update", "stock", key={"sku": "a"}, set={"count": 0})],
        )
    before = read(backend, "stock", {"sku": "a"})
    with pytest.raises(TransactionConditionFailed) as info:
        backend.store.record_transaction(run_id, _fence(), entry(5), writes)  # type: ignore[attr-defined]
    assert (info.value.table, info.value.key, info.value.index) == named
    assert 5 not in [e.seq for e in backend.store.load_journal(run_id)]
    assert read(backend, "stock", {"sku": "a"}) == before
    assert read(backend, "orders", {"order": "o-1"}) is None


def test_a_stale_invocation_commits_nothing(backend: Backend):
    run_id = seed(backend)
    from durable_lambda.engine.records import Fence  # noqa: PLC0415

    with pytest.raises(LeaseLostError):
        backend.store.record_transaction(run_id, Fence("owner-b", 0), entry(1), RESERVE)  # type: ignore[attr-defined]
    assert read(backend, "stock", {"sku": "a"}) == {"sku": "a", "count": 2, "label": "first"}
    assert read(backend, "orders", {"order": "o-1"}) is None


def test_a_duplicate_commit_of_a_recorded_step_writes_nothing(backend: Backend):
    run_id = seed(backend)
    backend.store.record_transaction(run_id, _fence(), entry(1), RESERVE[:1])  # type: ignore[attr-defined]
    # The same commit again under the same fence: memory refuses it (the entry
    # is final); DynamoDB cannot tell it from its own retry (same token) and
    # accepts it. Either way the transaction itself was cancelled.
    with contextlib.suppress(LeaseLostError):
        backend.store.record_transaction(run_id, _fence(), entry(1), RESERVE[:1])  # type: ignore[attr-defined]
    assert read(backend, "stock", {"sku": "a"}) == {"sku": "a", "count": 1, "label": "first"}
    # A different write at the same position is refused on both.
    with pytest.raises(LeaseLostError, match="already final"):
        backend.store.record_transaction(run_id, _fence(), entry(1), RESERVE[1:])  # type: ignore[attr-defined]
    assert read(backend, "orders", {"order": "o-1"}) is None


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_retried_commit_is_accepted_as_our_own_and_applies_once(backend: Backend, kind: Fault):
    run_id = seed(backend)
    if backend.faults is not None:
        backend.faults.inject("TransactWriteItems", kind)
    backend.store.record_transaction(run_id, _fence(), entry(1), RESERVE)  # type: ignore[attr-defined]
    if backend.faults is not None:
        assert backend.faults.count("TransactWriteItems", kind) == 1
    assert read(backend, "stock", {"sku": "a"}) == {"sku": "a", "count": 1, "label": "first"}
    assert [e.seq for e in backend.store.load_journal(run_id)] == [0, 1]
    # The user's items carry nothing of ours (no write token).
    assert read(backend, "orders", {"order": "o-1"}) == {"order": "o-1", "sku": "a"}


def test_a_task_transacts_through_the_worker(backend: Backend):
    registry = TaskRegistry()
    create_table(backend, "stock", ("sku",))

    def reserve(tx: Transaction, sku: str) -> str:
        tx.update("stock", {"sku": sku}, add={"count": 1})
        return sku

    @task(id="tx-worker", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        return await ctx.transact("reserve", reserve, payload)

    runner = LocalRunner(registry=registry, store=backend.store, flow=backend.flow)
    result = runner.run(run, "a")
    assert result.status is RunStatus.COMPLETED
    assert result.output == "a"
    assert read(backend, "stock", {"sku": "a"}) == {"sku": "a", "count": 1}


def test_a_transactional_step_costs_one_transaction(aws: Backend):
    run_id = seed(aws)
    assert aws.counter is not None
    aws.counter.reset()
    aws.store.record_transaction(run_id, _fence(), entry(1), RESERVE)  # type: ignore[attr-defined]
    assert aws.counter.snapshot() == {"dynamodb.TransactWriteItems": 1}


def test_the_runtime_table_is_not_a_user_table(aws: Backend):
    run_id = seed(aws)
    forged = TableWrite("put", aws.settings.table_name, item={"pk": f"RUN#{run_id}", "sk": "META"})
    with pytest.raises(ConfigurationError, match="own table"):
        aws.store.record_transaction(run_id, _fence(), entry(1), [forged])  # type: ignore[attr-defined]
    assert [e.seq for e in aws.store.load_journal(run_id)] == [0]


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_a_task_whose_commit_response_is_lost_applies_its_writes_once(aws: Backend, kind: Fault):
    registry = TaskRegistry()
    create_table(aws, "stock", ("sku",))
    bodies: list[str] = []

    def reserve(tx: Transaction, sku: str) -> str:
        bodies.append(sku)
        tx.update("stock", {"sku": sku}, add={"count": 1})
        return sku

    @task(id="tx-lost-response", registry=registry)
    async def run(payload: str, ctx: TaskContext) -> str:
        return await ctx.transact("reserve", reserve, payload)

    assert aws.faults is not None
    runner = LocalRunner(registry=registry, store=aws.store, flow=aws.flow)
    handle = runner.trigger(run, "a")
    # The run's first transaction is the step's commit (the trigger is a PutItem,
    # the lease an UpdateItem): applied, then its response lost and retried.
    aws.faults.inject(
        "TransactWriteItems", kind, calls={aws.faults.calls["TransactWriteItems"] + 1}
    )
    runner.drain()
    result = runner.client.result(handle.run_id)
    assert aws.faults.count("TransactWriteItems", kind) == 1
    assert result is not None
    assert result.output == "a"
    assert bodies == ["a"]
    assert read(aws, "stock", {"sku": "a"}) == {"sku": "a", "count": 1}


@pytest.mark.parametrize("op", ["=", "<>", "<", ">="])
def test_a_comparison_with_a_missing_attribute_is_false_on_both_backends(backend: Backend, op):
    run_id = seed(backend)
    check = TableWrite(
        "condition_check",
        "stock",
        key={"sku": "a"},
        conditions=(Condition.compare("missing", op, 1),),
    )
    with pytest.raises(TransactionConditionFailed):
        backend.store.record_transaction(run_id, _fence(), entry(1), [check])  # type: ignore[attr-defined]
