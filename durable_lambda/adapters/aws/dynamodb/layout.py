"""The DynamoDB item layout: keys, attribute maps and their decoding. No I/O.

One table holds everything, keys typed by prefix (docs/ARCHITECTURE.md, "Storage"):

=============================  ==================================  ==========================
pk                             sk                                  what
=============================  ==================================  ==========================
``RUN#<id>``                   ``META``                            run metadata
``RUN#<id>``                   ``STEP#<seq, 9 digits>``            journal entry
``RUN#<id>``                   ``EVT#<at>#<counter>``              timeline event
``RUN#<id>``                   ``TOKEN#<token id>``                wait token of the run
``TOKEN#<token id>``           ``TOKEN``                           wait token, id naming no run
``IDEM#<task>#<key>``          ``CLAIM#<task>``                    idempotency claim
``TIMER#<shard>``              ``<wake_at>#<run id>#<epoch>``      wake-up for the scheduler
=============================  ==================================  ==========================

The META item also carries two GSI keys: ``gsi1pk=TASK#<task>``,
``gsi1sk=<created_at>#<run id>`` (index ``by_task_status``) and
``gsi2pk=STATUS#<status>`` with ``gsi2sk=<created_at>#<run id>``, except while
RUNNING, where ``gsi2sk=<lease_expiry>#<run id>`` so expired leases are one
range Query (index ``by_status``).

Times are stored as fixed-width UTC ISO strings (``2026-01-02T03:04:05.000006Z``)
so that string order is time order in keys and conditions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from durable_lambda.engine.journal import EntryKind, EntryStatus, JournalEntry
from durable_lambda.engine.metadata import encode_doc
from durable_lambda.engine.records import EventKind, RunRecord, TimelineEvent, Timer
from durable_lambda.engine.state import RunStatus
from durable_lambda.engine.transitions import with_metadata
from durable_lambda.values import StoredValue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

META = "META"
STEP_PREFIX = "STEP#"
EVENT_PREFIX = "EVT#"
#: Sorts after ``STEP#``, and nothing else in a run's partition does: one Query
#: from ``STEP#`` on reads the journal and the run's wait tokens together.
TOKEN_PREFIX = "TOKEN#"  # noqa: S105 - a key prefix, not a secret
TASK_INDEX = "by_task_status"
STATUS_INDEX = "by_status"
#: Sparse index of runs due to be taken (QUEUED, SUSPENDED) by due time: the
#: scheduler finds runs whose resume message was lost (a crash between the
#: checkpoint and the send) as those long overdue.
DUE_INDEX = "by_due"
DUE_SHARDS = 4

#: Sorts after ``#`` and before any other printable key character: ``<time>#...``
#: keys up to and including ``<t>`` are exactly those below ``<t>`` + this.
_AFTER_HASH = "$"


def iso(moment: dt.datetime) -> str:
    """``moment`` as a fixed-width UTC string (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    """A datetime written by :func:`iso`."""
    return dt.datetime.fromisoformat(text)


def up_to(moment: dt.datetime) -> str:
    """The exclusive upper bound of sort keys ``<time>#...`` with ``time <= moment``."""
    return iso(moment) + _AFTER_HASH


def epoch_seconds(moment: dt.datetime) -> int:
    """Unix seconds, for the ``ttl`` attribute."""
    return int(moment.timestamp())


def run_pk(run_id: str) -> str:
    """The partition of one run."""
    return f"RUN#{run_id}"


def key(pk: str, sk: str) -> Item:
    """A primary key."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def step_sk(seq: int) -> str:
    """The sort key of journal position ``seq`` (zero-padded so order is position order)."""
    return f"{STEP_PREFIX}{seq:09d}"


def claim_key(task_id: str, idempotency_key: str) -> Item:
    """The key of an idempotency claim.

    The sort key keeps task ``a#b`` with key ``c`` apart from task ``a`` with key ``b#c``.
    """
    return key(f"IDEM#{task_id}#{idempotency_key}", f"CLAIM#{task_id}")


def timer_key(timer: Timer, shards: int) -> Item:
    """Where ``timer`` lives: a shard chosen by its run, sorted by wake time."""
    shard = _stable_hash(timer.run_id) % shards
    return key(f"TIMER#{shard}", f"{iso(timer.wake_at)}#{timer.run_id}#{timer.epoch:012d}")


def _stable_hash(text: str) -> int:
    # FNV-1a: stable across processes, unlike hash().
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


# -- attribute helpers -------------------------------------------------------------------


def s(value: str) -> AttributeValueTypeDef:
    """A string attribute."""
    return {"S": value}


def n(value: float) -> AttributeValueTypeDef:
    """A number attribute."""
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def get_s(item: Item, name: str) -> str | None:
    """A string attribute, or ``None`` when absent."""
    attr = item.get(name)
    return attr["S"] if attr is not None and "S" in attr else None


def req_s(item: Item, name: str) -> str:
    """A string attribute that every item of its type has."""
    value = get_s(item, name)
    if value is None:
        raise KeyError(f"item {get_s(item, 'pk')}/{get_s(item, 'sk')} has no {name!r}")
    return value


def get_n(item: Item, name: str, default: int = 0) -> int:
    """An integer attribute, or ``default`` when absent."""
    attr = item.get(name)
    return int(attr["N"]) if attr is not None and "N" in attr else default


def get_time(item: Item, name: str) -> dt.datetime | None:
    """A time attribute, or ``None`` when absent."""
    text = get_s(item, name)
    return parse_iso(text) if text is not None else None


def put_optional(item: Item, name: str, value: str | dt.datetime | None) -> None:
    """Set ``name`` in ``item`` unless ``value`` is ``None`` (absent means ``None``)."""
    if value is None:
        return
    item[name] = s(iso(value) if isinstance(value, dt.datetime) else value)


def put_value(item: Item, name: str, value: StoredValue | None) -> None:
    """A stored value: inline as ``name`` or a blob key as ``name_ref``."""
    if value is None:
        return
    if value.ref is not None:
        item[f"{name}_ref"] = s(value.ref)
    else:
        item[name] = s(value.inline if value.inline is not None else "null")


def get_value(item: Item, name: str) -> StoredValue | None:
    """The stored value ``name``, or ``None`` when absent."""
    ref = get_s(item, f"{name}_ref")
    if ref is not None:
        return StoredValue(ref=ref)
    inline = get_s(item, name)
    return StoredValue(inline=inline) if inline is not None else None


# -- runs --------------------------------------------------------------------------------


def status_index_keys(run: RunRecord) -> tuple[str, str]:
    """``(gsi2pk, gsi2sk)`` of ``run``: by lease expiry while RUNNING, else by creation."""
    at = run.created_at
    if run.status is RunStatus.RUNNING and run.lease_expiry is not None:
        at = run.lease_expiry
    return f"STATUS#{run.status.value}", f"{iso(at)}#{run.run_id}"


def due_shard_pk(shard: int) -> str:
    """The ``gsi3pk`` of one shard of the due index."""
    return f"DUE#{shard}"


def due_index_keys(run_id: str, due: dt.datetime) -> tuple[str, str]:
    """``(gsi3pk, gsi3sk)`` for a run due at ``due`` (sharded by run so no partition runs hot)."""
    return due_shard_pk(_stable_hash(run_id) % DUE_SHARDS), f"{iso(due)}#{run_id}"


def due_of(run: RunRecord) -> dt.datetime | None:
    """When ``run`` is due to be taken, or ``None`` when no message should be on its way."""
    if run.status in {RunStatus.QUEUED, RunStatus.SUSPENDED}:
        return run.wake_at or run.updated_at
    return None


@dataclass(frozen=True, slots=True)
class RunValues:
    """The stored forms of a run's large fields."""

    payload: StoredValue
    output: StoredValue | None = None
    error: StoredValue | None = None


#: Present (``true``) only while a run is suspended on its children; a nudge's
#: lease condition tests its existence.
WAITING_CHILDREN = "waiting_children"
#: While suspended on its children: those still running it waits on (a string
#: set; DynamoDB drops it once empty), and their count at which a nudge may
#: take it (present exactly while such a count is in force).
AWAITED_CHILDREN = "awaited_children"
AWAITED_WAKE = "awaited_wake"
#: Set while a cancel waits for the invocation holding the run (see ``RunRecord``).
CANCEL_REQUESTED = "cancel_requested"


def run_item(run: RunRecord, values: RunValues, retention: dt.timedelta) -> Item:
    """The META item of ``run`` (its payload, output and error as already stored)."""
    item: Item = {
        **key(run_pk(run.run_id), META),
        "type": s("run"),
        "run_id": s(run.run_id),
        "task_id": s(run.task_id),
        "status": s(run.status.value),
        "created_at": s(iso(run.created_at)),
        "updated_at": s(iso(run.updated_at)),
        "attempt": n(run.attempt),
        "epoch": n(run.epoch),
        "queue": s(run.queue),
        "priority": n(run.priority),
        "invocations": n(run.invocations),
        "gsi1pk": s(f"TASK#{run.task_id}"),
        "gsi1sk": s(f"{iso(run.created_at)}#{run.run_id}"),
    }
    gsi2pk, gsi2sk = status_index_keys(run)
    item["gsi2pk"] = s(gsi2pk)
    item["gsi2sk"] = s(gsi2sk)
    due = due_of(run)
    if due is not None:
        item["gsi3pk"], item["gsi3sk"] = (s(k) for k in due_index_keys(run.run_id, due))
    if run.tags:
        item["tags"] = {"L": [s(tag) for tag in run.tags]}
    for name in (
        "lease_owner",
        "concurrency_key",
        "idempotency_key",
        "last_delivery_error",
        "parent_run_id",
        "root_run_id",
        "replay_of",
    ):
        put_optional(item, name, getattr(run, name))
    if run.depth:
        item["depth"] = n(run.depth)
    if run.batched:
        item["batched"] = {"BOOL": True}
    _put_waiting(item, run)
    for name in ("lease_expiry", "wake_at", "started_at", "admitted_at", "finished_at"):
        put_optional(item, name, getattr(run, name))
    put_optional(item, "expires_at", run.expires_at)
    if run.metadata or run.metadata_marks:
        item["metadata"] = s(encode_doc(run.metadata, run.metadata_marks))
    put_value(item, "payload", values.payload)
    put_value(item, "output", values.output)
    put_value(item, "error", values.error)
    if run.status.is_terminal and run.finished_at is not None:
        item["ttl"] = n(epoch_seconds(run.finished_at + retention))
    return item


def _put_waiting(item: Item, run: RunRecord) -> None:
    """What a run suspended on its children keeps: the flag, the awaited set and its count."""
    if run.waiting_children:
        item[WAITING_CHILDREN] = {"BOOL": True}
    if run.awaited_children:
        item[AWAITED_CHILDREN] = {"SS": sorted(run.awaited_children)}
    if run.awaited_wake is not None:
        item[AWAITED_WAKE] = n(run.awaited_wake)


def awaited_of(item: Item) -> frozenset[str]:
    """The running children a META item's run waits on."""
    awaited = item.get(AWAITED_CHILDREN)
    return frozenset(awaited["SS"]) if awaited is not None and "SS" in awaited else frozenset()


def parse_run(item: Item) -> tuple[RunRecord, RunValues]:
    """A META item as a record (payload, output and error still to load) and its values."""
    tags = item.get("tags")
    record = RunRecord(
        run_id=req_s(item, "run_id"),
        task_id=req_s(item, "task_id"),
        status=RunStatus(req_s(item, "status")),
        payload="",
        created_at=parse_iso(req_s(item, "created_at")),
        updated_at=parse_iso(req_s(item, "updated_at")),
        attempt=get_n(item, "attempt", 1),
        epoch=get_n(item, "epoch"),
        lease_owner=get_s(item, "lease_owner"),
        lease_expiry=get_time(item, "lease_expiry"),
        wake_at=get_time(item, "wake_at"),
        queue=get_s(item, "queue") or "",
        concurrency_key=get_s(item, "concurrency_key"),
        priority=get_n(item, "priority"),
        tags=tuple(tag["S"] for tag in tags["L"]) if tags is not None and "L" in tags else (),
        idempotency_key=get_s(item, "idempotency_key"),
        invocations=get_n(item, "invocations"),
        started_at=get_time(item, "started_at"),
        admitted_at=get_time(item, "admitted_at"),
        finished_at=get_time(item, "finished_at"),
        expires_at=get_time(item, "expires_at"),
        last_delivery_error=get_s(item, "last_delivery_error"),
        parent_run_id=get_s(item, "parent_run_id"),
        root_run_id=get_s(item, "root_run_id"),
        depth=get_n(item, "depth"),
        batched="batched" in item,
        waiting_children=WAITING_CHILDREN in item,
        awaited_children=awaited_of(item),
        awaited_wake=get_n(item, AWAITED_WAKE) if AWAITED_WAKE in item else None,
        replay_of=get_s(item, "replay_of"),
        cancel_requested=CANCEL_REQUESTED in item,
    )
    if "metadata" in item:
        record = with_metadata(record, req_s(item, "metadata"))
    payload = get_value(item, "payload") or StoredValue(inline="null")
    return record, RunValues(payload, get_value(item, "output"), get_value(item, "error"))


# -- journal, events, timers -------------------------------------------------------------


def entry_item(
    run_id: str, entry: JournalEntry, result: StoredValue | None, error: StoredValue | None
) -> Item:
    """The STEP item of ``entry`` (its result and error as already stored)."""
    item: Item = {
        **key(run_pk(run_id), step_sk(entry.seq)),
        "type": s("step"),
        "seq": n(entry.seq),
        "name": s(entry.name),
        "occurrence": n(entry.occurrence),
        "kind": s(entry.kind.value),
        "status": s(entry.status.value),
        "attempts": n(entry.attempts),
    }
    if entry.scope:  # the root scope is the default: journals from before scopes lack it
        item["scope"] = s(entry.scope)
    if entry.position is not None:
        item["position"] = n(entry.position)
    for name in ("started_at", "ended_at", "wake_at"):
        put_optional(item, name, getattr(entry, name))
    put_value(item, "result", result)
    put_value(item, "error", error)
    return item


def parse_entry(item: Item) -> tuple[JournalEntry, StoredValue | None, StoredValue | None]:
    """A STEP item as an entry (result and error still to load) and their stored forms."""
    entry = JournalEntry(
        seq=get_n(item, "seq"),
        name=req_s(item, "name"),
        occurrence=get_n(item, "occurrence"),
        kind=EntryKind(req_s(item, "kind")),
        status=EntryStatus(req_s(item, "status")),
        attempts=get_n(item, "attempts", 1),
        started_at=get_time(item, "started_at"),
        ended_at=get_time(item, "ended_at"),
        wake_at=get_time(item, "wake_at"),
        scope=get_s(item, "scope") or "",
        position=get_n(item, "position") if "position" in item else None,
    )
    return entry, get_value(item, "result"), get_value(item, "error")


def event_item(run_id: str, event: TimelineEvent, counter: str) -> Item:
    """The EVT item of ``event``; ``counter`` orders events of the same instant."""
    item: Item = {
        **key(run_pk(run_id), f"{EVENT_PREFIX}{iso(event.at)}#{counter}"),
        "type": s("event"),
        "at": s(iso(event.at)),
        "kind": s(event.kind.value),
        "detail": s(event.detail),
    }
    if event.delay is not None:
        item["delay"] = n(float(event.delay))
    return item


def parse_event(item: Item) -> TimelineEvent:
    """An EVT item as an event."""
    delay = item.get("delay")
    return TimelineEvent(
        at=parse_iso(req_s(item, "at")),
        kind=EventKind(req_s(item, "kind")),
        detail=get_s(item, "detail") or "",
        delay=float(delay["N"]) if delay is not None and "N" in delay else None,
    )


def timer_item(timer: Timer, shards: int) -> Item:
    """The TIMER item of ``timer``."""
    return {
        **timer_key(timer, shards),
        "type": s("timer"),
        "run_id": s(timer.run_id),
        "epoch": n(timer.epoch),
        "wake_at": s(iso(timer.wake_at)),
    }


def parse_timer(item: Item) -> Timer:
    """A TIMER item as a timer."""
    return Timer(
        run_id=req_s(item, "run_id"),
        epoch=get_n(item, "epoch"),
        wake_at=parse_iso(req_s(item, "wake_at")),
    )


def item_size(item: Item) -> int:
    """An upper estimate of an item's size in bytes (for the 4 MB transaction limit)."""
    size = 0
    for name, attr in item.items():
        size += len(name) + 1
        for value in attr.values():
            size += len(value.encode("utf-8")) if isinstance(value, str) else len(repr(value))
    return size


# -- the table -----------------------------------------------------------------------------

#: Key attributes and indexes, exactly as ``template.yaml`` declares them.
KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
TABLE_KEYS = ("pk", "sk")
#: Indexes that project only keys (the rest project everything).
KEYS_ONLY_INDEXES = frozenset({DUE_INDEX})
INDEX_KEYS = {
    TASK_INDEX: ("gsi1pk", "gsi1sk"),
    STATUS_INDEX: ("gsi2pk", "gsi2sk"),
    DUE_INDEX: ("gsi3pk", "gsi3sk"),
}
TTL_ATTRIBUTE = "ttl"


def timer_query(table: str, shard: int, until: dt.datetime, limit: int) -> dict[str, Any]:
    """The Query of one timer shard for the timers due before ``until``, earliest first."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk < :until",
        "ExpressionAttributeValues": {":pk": s(f"TIMER#{shard}"), ":until": s(up_to(until))},
        "ConsistentRead": True,
        "Limit": limit,
    }
