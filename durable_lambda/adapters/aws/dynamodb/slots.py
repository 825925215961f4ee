"""Concurrency counters and parked runs on DynamoDB: item layout and conditional requests. No I/O.

==========================  ==========================================  =====================
pk                          sk                                          what
==========================  ==========================================  =====================
``QUEUE#<key id>``          ``COUNTER``                                 counter with holders
``QUEUE#<key id>``          ``WAIT#<waiter_order(prio, time, run)>``    a parked run
==========================  ==========================================  =====================

The counter keeps each holder as a top-level attribute ``holder#<run id>``
whose value is the lease expiry (ISO). A nested map would need to exist before
``SET holders.#run`` and DynamoDB cannot create it in the same expression, so
the first acquire would cost two requests; top-level attributes keep acquire,
release and reap at one conditional request each. ``count`` always equals the
number of holders (every write that adds or removes one moves it in the same
expression) and exists whenever the item does, so conditions compare it
directly. While ``waiting > 0`` the counter carries ``gsi2pk=QUEUES#WAITING``,
``gsi2sk=<key id>`` so the ``by_status`` index lists the counters with parked
runs; the write that takes ``waiting`` to 0 removes them (it conditions on the
``waiting`` it read, so the index keys never outlive the last waiter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.adapters.aws.dynamodb.expressions import Update
from durable_lambda.engine.records import Park
from durable_lambda.engine.slots import Holder, QueueState, SlotKey, waiter_order
from durable_lambda.engine.state import RunStatus

if TYPE_CHECKING:
    import datetime as dt

    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item

COUNTER = "COUNTER"
WAIT_PREFIX = "WAIT#"
HOLDER_PREFIX = "holder#"
#: ``gsi2pk`` of counters with parked runs (index ``by_status``).
WAITING_PK = "QUEUES#WAITING"
_FALSE: Any = {"BOOL": False}


def queue_pk(key: SlotKey) -> str:
    """The partition of one counter and its parked runs."""
    return f"QUEUE#{key.id}"


def counter_key(key: SlotKey) -> Item:
    """The key of the counter item."""
    return items.key(queue_pk(key), COUNTER)


def holder_attribute(run_id: str) -> str:
    """The attribute holding ``run_id``'s lease expiry."""
    return f"{HOLDER_PREFIX}{run_id}"


# -- conditions, each composed from the builder's aliases --------------------------------------


def not_paused(update: Update) -> str:
    """The counter is not paused."""
    paused = update.name("paused")
    return f"(attribute_not_exists({paused}) OR {paused} = {update.value('false', _FALSE)})"


def no_waiters(update: Update) -> str:
    """No run is parked on the counter."""
    waiting = update.name("waiting")
    return f"(attribute_not_exists({waiting}) OR {waiting} = {update.value('zero', items.n(0))})"


def room_stored(update: Update) -> str:
    """Room under the limit the counter stores (used where no code limit is given)."""
    count, lo, cl = (update.name(a) for a in ("count", "limit_override", "code_limit"))
    return (
        f"((attribute_exists({lo}) AND {count} < {lo})"
        f" OR (attribute_not_exists({lo}) AND (attribute_not_exists({cl}) OR {count} < {cl})))"
    )


def room(update: Update, code_limit: int | None) -> str:
    """Room for one more unit under ``code_limit`` (the code's limit) unless overridden."""
    count, lo = update.name("count"), update.name("limit_override")
    if code_limit is None:  # unlimited unless overridden
        return f"(attribute_not_exists({lo}) OR {count} < {lo})"
    if code_limit <= 0:
        return f"(attribute_exists({lo}) AND {count} < {lo})"
    cl = update.value("code_limit", items.n(code_limit))
    return (
        f"((attribute_exists({lo}) AND {count} < {lo})"
        f" OR (attribute_not_exists({lo}) AND (attribute_not_exists({count}) OR {count} < {cl})))"
    )


def full(update: Update, code_limit: int | None) -> str:
    """The negation of :func:`room` (``count`` exists whenever the item does)."""
    count, lo = update.name("count"), update.name("limit_override")
    if code_limit is None:
        return f"(attribute_exists({lo}) AND {count} >= {lo})"
    if code_limit <= 0:
        return f"(attribute_not_exists({lo}) OR {count} >= {lo})"
    cl = update.value("code_limit", items.n(code_limit))
    return (
        f"((attribute_exists({lo}) AND {count} >= {lo})"
        f" OR (attribute_not_exists({lo}) AND {count} >= {cl}))"
    )


def store_code_limit(update: Update, code_limit: int | None) -> None:
    """Store ``code_limit`` on the counter (``None`` removes it)."""
    if code_limit is not None:
        update.set("code_limit", items.n(code_limit))
    else:
        update.remove("code_limit")


def count_from_zero(update: Update) -> None:
    """``SET count = if_not_exists(count, 0)``: ``count`` exists whenever the item does."""
    count = update.name("count")
    update.set_to("count", f"if_not_exists({count}, {update.value('zero', items.n(0))})")


def parse_counter(key: SlotKey, item: Item | None) -> QueueState:
    """A counter item as a :class:`QueueState` (empty when there is no item)."""
    if not item:
        return QueueState(key)
    holders = sorted(
        (
            Holder(name[len(HOLDER_PREFIX) :], items.parse_iso(attr["S"]))
            for name, attr in item.items()
            if name.startswith(HOLDER_PREFIX)
        ),
        key=lambda h: (h.expiry, h.run_id),
    )
    paused = item.get("paused")
    return QueueState(
        key=key,
        holders=tuple(holders),
        waiting=items.get_n(item, "waiting"),
        paused=bool(paused.get("BOOL", False)) if paused is not None else False,
        limit_override=_optional_n(item, "limit_override"),
        code_limit=_optional_n(item, "code_limit"),
    )


def _optional_n(item: Item, name: str) -> int | None:
    attr = item.get(name)
    return int(attr["N"]) if attr is not None and "N" in attr else None


def parse_key(item: Item) -> SlotKey:
    """The :class:`SlotKey` a parked-on counter names (as :func:`park_actions` stored it)."""
    return SlotKey(items.req_s(item, "queue"), items.get_s(item, "concurrency_key"))


# -- parking (part of the run's checkpoint transaction) --------------------------------------


def park_actions(table: str, park: Park, run_id: str, epoch: int) -> list[TransactWriteItemTypeDef]:
    """The counter update (only while it has no room) and the WAIT item of a parked run.

    ``epoch`` is the run's epoch after the checkpoint: the one its resume message carries.
    """
    update = Update()
    store_code_limit(update, park.code_limit)
    update.set("gsi2pk", items.s(WAITING_PK))
    update.set("gsi2sk", items.s(park.key.id))
    update.set("queue", items.s(park.key.queue))
    count_from_zero(update)
    if park.key.concurrency_key is not None:
        update.set("concurrency_key", items.s(park.key.concurrency_key))
    else:
        update.remove("concurrency_key")
    update.add("waiting", "one", items.n(1))
    waiting = update.name("waiting")
    update.require(
        f"{update.name('paused')} = {update.value('true', {'BOOL': True})}"
        f" OR {waiting} > {update.value('zero', items.n(0))} OR {full(update, park.code_limit)}"
    )
    order = waiter_order(park.priority, park.enqueued_at, run_id)
    wait: Item = {
        **items.key(queue_pk(park.key), f"{WAIT_PREFIX}{order}"),
        "type": items.s("waiter"),
        "run_id": items.s(run_id),
        "epoch": items.n(epoch),
        "priority": items.n(park.priority),
        "enqueued_at": items.s(items.iso(park.enqueued_at)),
    }
    return [
        {"Update": cast("Any", update.request(table, counter_key(park.key)))},
        {"Put": {"TableName": table, "Item": wait}},
    ]


def release_actions(table: str, key: SlotKey, run_id: str) -> list[TransactWriteItemTypeDef]:
    """Give back ``run_id``'s unit inside a checkpoint, only while nobody is parked."""
    update = drop_holder(run_id)
    update.require(f"attribute_exists({update.name(holder_attribute(run_id))})")
    update.require(no_waiters(update))
    return [{"Update": cast("Any", update.request(table, counter_key(key)))}]


def drop_holder(run_id: str) -> Update:
    """``ADD count -1 REMOVE holder#<run id>`` (its condition still to add)."""
    update = Update()
    update.add("count", "minus", items.n(-1))
    update.remove(holder_attribute(run_id))
    return update


def acquire_requests(
    table: str, key: SlotKey, run_id: str, expiry: dt.datetime, code_limit: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The UpdateItems that take a new unit for ``run_id`` and that extend one it holds."""
    requests = []
    for take in (True, False):
        update = Update()
        holder = holder_attribute(run_id)
        update.set_to(holder, update.value("expiry", items.s(items.iso(expiry))))
        store_code_limit(update, code_limit)
        if take:
            update.add("count", "one", items.n(1))
            update.require(f"attribute_not_exists({update.name(holder)})")
            update.require(not_paused(update))
            update.require(no_waiters(update))
            update.require(room(update, code_limit))
            options = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        else:
            update.require(f"attribute_exists({update.name(holder)})")
            options = {}
        requests.append(update.request(table, counter_key(key), ReturnValues="ALL_NEW", **options))
    return requests[0], requests[1]


def control_request(
    table: str,
    key: SlotKey,
    *,
    paused: bool | None,
    limit_override: int | None,
    clear_override: bool,
) -> dict[str, Any]:
    """The UpdateItem that pauses, resumes or overrides the limit of a counter."""
    update = Update()
    count_from_zero(update)
    if paused is not None:
        update.set("paused", {"BOOL": paused})
    if clear_override:
        update.remove("limit_override")
    elif limit_override is not None:
        update.set("limit_override", items.n(limit_override))
    return update.request(table, counter_key(key), ReturnValues="ALL_NEW")


def park_refused(actions: list[TransactWriteItemTypeDef], reasons: list[dict[str, Any]]) -> bool:
    """Whether a cancelled checkpoint failed on its counter's "no room" condition."""
    return any(
        "Update" in action
        and items.get_s(cast("Item", action["Update"]["Key"]), "sk") == COUNTER
        and writes.failed_condition(reasons, index)
        for index, action in enumerate(actions)
    )


# -- granting ---------------------------------------------------------------------------------


def leave_waiting(update: Update, waiting: int) -> None:
    """``ADD waiting -1`` given the ``waiting`` read before it.

    The last waiter's departure removes the index keys; the condition makes the
    write fail (to be retried on a fresh read) if ``waiting`` moved meanwhile.
    """
    update.add("waiting", "minus", items.n(-1))
    one = update.value("one", items.n(1))
    if waiting <= 1:
        update.require(f"{update.name('waiting')} = {one}")
        update.remove("gsi2pk")
        update.remove("gsi2sk")
    else:
        update.require(f"{update.name('waiting')} > {one}")


def grant_actions(
    table: str, key: SlotKey, waiter: Item, waiting: int, *, expiry: str, now: dt.datetime
) -> list[TransactWriteItemTypeDef]:
    """Counter (room, new holder), WAIT item (still there) and META (still parked, same epoch).

    The run, QUEUED again, enters the due index at ``now``: its message is sent next.
    """
    run_id = items.req_s(waiter, "run_id")
    counter = Update()
    holder = holder_attribute(run_id)
    counter.set_to(holder, counter.value("expiry", items.s(expiry)))
    counter.add("count", "one", items.n(1))
    counter.require(f"attribute_not_exists({counter.name(holder)})")
    counter.require(not_paused(counter))
    counter.require(room_stored(counter))
    leave_waiting(counter, waiting)
    meta = Update()
    queued = RunStatus.QUEUED.value
    meta.set("status", items.s(queued))
    meta.set("gsi2pk", items.s(f"STATUS#{queued}"))
    # Out of RUNNING, the status index sorts by creation, which gsi1sk already holds.
    meta.set_to("gsi2sk", meta.name("gsi1sk"))
    gsi3pk, gsi3sk = items.due_index_keys(run_id, now)
    meta.set("gsi3pk", items.s(gsi3pk))
    meta.set("gsi3sk", items.s(gsi3sk))
    meta.remove("wake_at")
    parked = meta.value("parked", items.s(RunStatus.WAITING_FOR_SLOT.value))
    meta.require(f"{meta.name('status')} = {parked}")
    meta.require(f"{meta.name('epoch')} = {meta.value('epoch', waiter['epoch'])}")
    old = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    return [
        {"Update": cast("Any", counter.request(table, counter_key(key), **old))},
        _wait_delete(table, waiter),
        {
            "Update": cast(
                "Any", meta.request(table, items.key(items.run_pk(run_id), items.META), **old)
            )
        },
    ]


def drop_actions(
    table: str, key: SlotKey, waiter: Item, waiting: int
) -> list[TransactWriteItemTypeDef]:
    """Forget a WAIT item whose run is no longer parked (canceled, failed, expired)."""
    counter = Update()
    leave_waiting(counter, waiting)
    return [
        {"Update": cast("Any", counter.request(table, counter_key(key)))},
        _wait_delete(table, waiter),
    ]


def _wait_delete(table: str, waiter: Item) -> TransactWriteItemTypeDef:
    """Delete the WAIT item read, only while it still is that one.

    A run parks under the same key each time (its priority, creation time and
    id), so the item may have been replaced since it was read: the run was
    granted, ran and parked again. The epoch tells them apart; deleting the new
    item would leave the run parked with nothing to wake it.
    """
    return {
        "Delete": {
            "TableName": table,
            "Key": {"pk": waiter["pk"], "sk": waiter["sk"]},
            "ConditionExpression": "#epoch = :epoch",
            "ExpressionAttributeNames": {"#epoch": "epoch"},
            "ExpressionAttributeValues": {":epoch": waiter["epoch"]},
        }
    }
