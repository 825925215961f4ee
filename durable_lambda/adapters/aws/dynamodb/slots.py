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

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
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

#: Aliases of the counter's attributes, shared by every expression below.
NAMES = {
    "#count": "count",
    "#waiting": "waiting",
    "#paused": "paused",
    "#lo": "limit_override",
    "#cl": "code_limit",
    "#gpk": "gsi2pk",
    "#gsk": "gsi2sk",
    "#queue": "queue",
    "#ckey": "concurrency_key",
}
NOT_PAUSED = "(attribute_not_exists(#paused) OR #paused = :false)"
NO_WAITERS = "(attribute_not_exists(#waiting) OR #waiting = :zero)"
#: Room under the limit the counter stores (used where no code limit is given).
ROOM_STORED = (
    "((attribute_exists(#lo) AND #count < #lo)"
    " OR (attribute_not_exists(#lo) AND (attribute_not_exists(#cl) OR #count < #cl)))"
)
_ALIAS = re.compile(r"[#:][A-Za-z0-9_]+")


def queue_pk(key: SlotKey) -> str:
    """The partition of one counter and its parked runs."""
    return f"QUEUE#{key.id}"


def counter_key(key: SlotKey) -> Item:
    """The key of the counter item."""
    return items.key(queue_pk(key), COUNTER)


def holder_attribute(run_id: str) -> str:
    """The attribute holding ``run_id``'s lease expiry."""
    return f"{HOLDER_PREFIX}{run_id}"


def common_values() -> Item:
    """Values the expressions share."""
    return {":zero": items.n(0), ":one": items.n(1), ":false": {"BOOL": False}}


def room(code_limit: int | None) -> str:
    """Room for one more unit under ``:cl`` (the code's limit) unless overridden."""
    if code_limit is None:  # unlimited unless overridden
        return "(attribute_not_exists(#lo) OR #count < #lo)"
    if code_limit <= 0:
        return "(attribute_exists(#lo) AND #count < #lo)"
    return (
        "((attribute_exists(#lo) AND #count < #lo)"
        " OR (attribute_not_exists(#lo) AND (attribute_not_exists(#count) OR #count < :cl)))"
    )


def full(code_limit: int | None) -> str:
    """The negation of :func:`room` (``count`` exists whenever the item does)."""
    if code_limit is None:
        return "(attribute_exists(#lo) AND #count >= #lo)"
    if code_limit <= 0:
        return "(attribute_not_exists(#lo) OR #count >= #lo)"
    return (
        "((attribute_exists(#lo) AND #count >= #lo)"
        " OR (attribute_not_exists(#lo) AND #count >= :cl))"
    )


def code_limit_clause(code_limit: int | None) -> tuple[list[str], list[str]]:
    """``(sets, removes)`` storing ``code_limit`` (``None`` removes it)."""
    return (["#cl = :cl"], []) if code_limit is not None else ([], ["#cl"])


def expression(sets: Sequence[str], adds: Sequence[str] = (), removes: Sequence[str] = ()) -> str:
    """An UpdateExpression from its clauses."""
    parts = []
    if sets:
        parts.append("SET " + ", ".join(sets))
    if adds:
        parts.append("ADD " + ", ".join(adds))
    if removes:
        parts.append("REMOVE " + ", ".join(removes))
    return " ".join(parts)


def request(body: dict[str, Any], names: dict[str, str], values: Item) -> dict[str, Any]:
    """``body`` with only the aliases its expressions use (DynamoDB rejects unused ones)."""
    used = set()
    for field in ("UpdateExpression", "ConditionExpression", "KeyConditionExpression"):
        used.update(_ALIAS.findall(body.get(field, "")))
    body = dict(body)
    if any(alias in used for alias in names):
        body["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used}
    if any(alias in used for alias in values):
        body["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in used}
    return body


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
    sets, removes = code_limit_clause(park.code_limit)
    sets += [
        "#gpk = :gpk",
        "#gsk = :gsk",
        "#queue = :queue",
        "#count = if_not_exists(#count, :zero)",
    ]
    if park.key.concurrency_key is not None:
        sets.append("#ckey = :ckey")
    else:
        removes.append("#ckey")
    values: Item = {
        **common_values(),
        ":true": {"BOOL": True},
        ":gpk": items.s(WAITING_PK),
        ":gsk": items.s(park.key.id),
        ":queue": items.s(park.key.queue),
        ":ckey": items.s(park.key.concurrency_key or ""),
    }
    if park.code_limit is not None:
        values[":cl"] = items.n(park.code_limit)
    update = request(
        {
            "TableName": table,
            "Key": counter_key(park.key),
            "UpdateExpression": expression(sets, ["#waiting :one"], removes),
            "ConditionExpression": "#paused = :true OR #waiting > :zero"
            f" OR {full(park.code_limit)}",
        },
        NAMES,
        values,
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
        {"Update": cast("Any", update)},
        {"Put": {"TableName": table, "Item": wait}},
    ]


def release_actions(table: str, key: SlotKey, run_id: str) -> list[TransactWriteItemTypeDef]:
    """Give back ``run_id``'s unit inside a checkpoint, only while nobody is parked."""
    update = request(
        {
            "TableName": table,
            "Key": counter_key(key),
            "UpdateExpression": expression([], ["#count :minus"], ["#h"]),
            "ConditionExpression": f"attribute_exists(#h) AND {NO_WAITERS}",
        },
        {**NAMES, "#h": holder_attribute(run_id)},
        {**common_values(), ":minus": items.n(-1)},
    )
    return [{"Update": cast("Any", update)}]


def park_refused(actions: list[TransactWriteItemTypeDef], reasons: list[dict[str, Any]]) -> bool:
    """Whether a cancelled checkpoint failed on its counter's "no room" condition."""
    return any(
        "Update" in action
        and items.get_s(cast("Item", action["Update"]["Key"]), "sk") == COUNTER
        and writes.failed_condition(reasons, index)
        for index, action in enumerate(actions)
    )


# -- granting ---------------------------------------------------------------------------------


def waiting_step(waiting: int) -> tuple[str, list[str]]:
    """Condition and removes of ``ADD waiting -1`` given the ``waiting`` read before it.

    The last waiter's departure removes the index keys; the condition makes the
    write fail (to be retried on a fresh read) if ``waiting`` moved meanwhile.
    """
    if waiting <= 1:
        return "#waiting = :one", ["#gpk", "#gsk"]
    return "#waiting > :one", []


def grant_actions(
    table: str, key: SlotKey, waiter: Item, waiting: int, *, expiry: str, now: dt.datetime
) -> list[TransactWriteItemTypeDef]:
    """Counter (room, new holder), WAIT item (still there) and META (still parked, same epoch).

    The run, QUEUED again, enters the due index at ``now``: its message is sent next.
    """
    run_id = items.req_s(waiter, "run_id")
    due_keys = items.due_index_keys(run_id, now)
    step, removes = waiting_step(waiting)
    names = {**NAMES, "#h": holder_attribute(run_id)}
    values: Item = {**common_values(), ":expiry": items.s(expiry), ":minus": items.n(-1)}
    counter = request(
        {
            "TableName": table,
            "Key": counter_key(key),
            "UpdateExpression": expression(
                ["#h = :expiry"], ["#count :one", "#waiting :minus"], removes
            ),
            "ConditionExpression": (
                f"attribute_not_exists(#h) AND {NOT_PAUSED} AND {ROOM_STORED} AND {step}"
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
        names,
        values,
    )
    queued = RunStatus.QUEUED.value
    meta = {
        "TableName": table,
        "Key": items.key(items.run_pk(run_id), items.META),
        # Out of RUNNING, the status index sorts by creation, which gsi1sk already holds.
        "UpdateExpression": "SET #status = :queued, #gsi2pk = :gsi2pk, #gsi2sk = #gsi1sk,"
        " #gsi3pk = :gsi3pk, #gsi3sk = :gsi3sk REMOVE #wake_at",
        "ConditionExpression": "#status = :parked AND #epoch = :epoch",
        "ExpressionAttributeNames": {
            f"#{name}": name
            for name in (
                "status",
                "gsi2pk",
                "gsi2sk",
                "gsi1sk",
                "gsi3pk",
                "gsi3sk",
                "wake_at",
                "epoch",
            )
        },
        "ExpressionAttributeValues": {
            ":queued": items.s(queued),
            ":gsi2pk": items.s(f"STATUS#{queued}"),
            ":parked": items.s(RunStatus.WAITING_FOR_SLOT.value),
            **dict(zip((":gsi3pk", ":gsi3sk"), (items.s(k) for k in due_keys), strict=True)),
            ":epoch": waiter["epoch"],
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return [
        {"Update": cast("Any", counter)},
        _wait_delete(table, waiter),
        {"Update": cast("Any", meta)},
    ]


def drop_actions(
    table: str, key: SlotKey, waiter: Item, waiting: int
) -> list[TransactWriteItemTypeDef]:
    """Forget a WAIT item whose run is no longer parked (canceled, failed, expired)."""
    step, removes = waiting_step(waiting)
    counter = request(
        {
            "TableName": table,
            "Key": counter_key(key),
            "UpdateExpression": expression([], ["#waiting :minus"], removes),
            "ConditionExpression": step,
        },
        NAMES,
        {**common_values(), ":minus": items.n(-1)},
    )
    return [{"Update": cast("Any", counter)}, _wait_delete(table, waiter)]


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
