"""Wait tokens on the run store's DynamoDB table: one item each, beside its run's journal.

Every operation is one request: ``create`` a conditional ``PutItem``
(``attribute_not_exists``; an existing token comes back with the refusal),
``get`` one ``GetItem``, ``resolve``/``expire``/``heartbeat`` one conditional
``UpdateItem`` on the status PENDING, so two racing resolutions settle the
token once. The semantics are those of
:class:`~durable_lambda.adapters.memory.tokens.MemoryTokenStore` (one contract
suite runs on both).

Item: ``pk=RUN#<run id>``, ``sk=TOKEN#<id>`` (the run id is the token id's
tail), so the Query that loads the run's journal brings its tokens along and a
woken run reads no token of its own. A token whose id names no run (created
before ids did) keeps ``pk=TOKEN#<id>``, ``sk=TOKEN``: every operation finds
either by its id. Attributes: ``run_id``, ``status``, ``created_at``,
``name``, ``timeout_at``, ``heartbeat_timeout`` (seconds), ``last_heartbeat_at``,
``resolved_at``, ``data`` (or ``data_ref``, a blob key), ``error_type``,
``error_message``, ``reason``, ``tags``, ``secret_hashes`` (a string set: the
SHA-256 of each callback secret, never a secret), ``ttl`` (retention past its
resolution, or past its timeout; a pending token without a timeout has none,
so a long wait never loses it), ``write_id`` (the last resolution's token, so a
retried write that had been applied is recognised).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from durable_lambda.adapters.aws.dynamodb import layout as items
from durable_lambda.adapters.aws.dynamodb import writes
from durable_lambda.adapters.aws.dynamodb.expressions import Update
from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.engine.token_ids import run_of_token
from durable_lambda.engine.tokens import (
    Resolution,
    TimeoutReason,
    TokenInfo,
    TokenStatus,
    expired_reason,
)
from durable_lambda.errors import TokenAlreadyResolvedError, TokenNotFoundError
from durable_lambda.values import StoredValue, ValueStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from durable_lambda.adapters.aws.dynamodb.layout import Item

#: The sort key of a token whose id names no run (its own partition).
LEGACY_SORT_KEY = "TOKEN"


def token_key(token_id: str) -> Item:
    """The key of a token's item: in its run's partition, or its own for an id naming no run."""
    run_id = run_of_token(token_id)
    if run_id is None:
        return items.key(f"{items.TOKEN_PREFIX}{token_id}", LEGACY_SORT_KEY)
    return items.key(items.run_pk(run_id), f"{items.TOKEN_PREFIX}{token_id}")


def parse_token(item: Item) -> tuple[TokenInfo, StoredValue | None]:
    """The token of ``item``, without its data, and where that data is (``None``: none)."""
    heartbeat = item.get("heartbeat_timeout")
    error_type = items.get_s(item, "error_type")
    reason = items.get_s(item, "reason")
    token = TokenInfo(
        token_id=items.req_s(item, "token_id"),
        run_id=items.req_s(item, "run_id"),
        status=TokenStatus(items.req_s(item, "status")),
        created_at=items.parse_iso(items.req_s(item, "created_at")),
        name=items.get_s(item, "name"),
        timeout_at=items.get_time(item, "timeout_at"),
        heartbeat_timeout=float(heartbeat["N"]) if heartbeat and "N" in heartbeat else None,
        last_heartbeat_at=items.get_time(item, "last_heartbeat_at"),
        resolved_at=items.get_time(item, "resolved_at"),
        error=None
        if error_type is None
        else ErrorInfo(error_type, items.get_s(item, "error_message") or ""),
        timeout_reason=cast("TimeoutReason", reason) if reason is not None else None,
        tags=tuple(t["S"] for t in item.get("tags", {}).get("L", []) if "S" in t),
        secret_hashes=tuple(sorted(item.get("secret_hashes", {}).get("SS", []))),
    )
    return token, items.get_value(item, "data")


def loaded_token(item: Item, values: ValueStore) -> TokenInfo:
    """The token of ``item`` with its data (loaded from the blob store when it is there)."""
    token, data = parse_token(item)
    return token if data is None else replace(token, data=values.load(data))


class DynamoDBTokenStore:
    """:class:`~durable_lambda.ports.TokenStore` on the run store's table.

    Args:
        client: A low-level boto3 DynamoDB client.
        table_name: The table.
        values: Where completion data goes: inline up to its limit, else the blob store.
        retention: How long a token is kept past its last possible deadline (``ttl``).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        values: ValueStore,
        *,
        retention: dt.timedelta = dt.timedelta(days=30),
    ) -> None:
        """Wire the store to its table."""
        self.client = client
        self.table = table_name
        self.values = values
        self.retention = retention

    def create(self, token: TokenInfo) -> TokenInfo:
        """Create ``token`` unless its id exists; the token as stored either way."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=self._item(token),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            old = _old_item(exc)
            existing = self._parse(old) if old is not None else self._require(token.token_id)
            return self._add_secrets(existing, token.secret_hashes)
        return token

    def _add_secrets(self, existing: TokenInfo, hashes: tuple[str, ...]) -> TokenInfo:
        """``existing`` with ``hashes`` added while it is pending (one more request, only then)."""
        added = [h for h in hashes if h not in existing.secret_hashes]
        if not added or existing.status is not TokenStatus.PENDING:
            return existing
        update = Update()
        update.add("secret_hashes", "hashes", {"SS": added})
        update.require(self._pending(update))
        new, old = self._update(existing.token_id, update)
        if new is not None:
            return self._parse(new)
        return self._parse(old) if old else existing  # resolved meanwhile: no URL is needed

    def get(self, token_id: str) -> TokenInfo | None:
        """The token, or ``None`` (a strongly consistent read: a completion is seen at once)."""
        got = self.client.get_item(
            TableName=self.table, Key=token_key(token_id), ConsistentRead=True
        )
        item = got.get("Item")
        return None if item is None else self._parse(item)

    def resolve(self, token_id: str, resolution: Resolution, now: dt.datetime) -> TokenInfo:
        """Resolve the pending token once (see ``ports.TokenStore.resolve``)."""
        data = (
            None
            if resolution.data is None
            else self.values.store(f"token {token_id!r} data", resolution.data)
        )
        stamp = writes.write_token(
            "token",
            token_id,
            resolution.status.value,
            resolution.data,
            resolution.error,
            items.iso(now),
        )
        update = Update()
        update.set("status", items.s(resolution.status.value))
        update.set("resolved_at", items.s(items.iso(now)))
        update.set(items.TTL_ATTRIBUTE, items.n(items.epoch_seconds(now + self.retention)))
        update.set(writes.WRITE_ID, items.s(stamp))
        if data is not None and data.ref is not None:
            update.set("data_ref", items.s(data.ref))
        elif data is not None:
            update.set("data", items.s(data.inline if data.inline is not None else "null"))
        if resolution.error is not None:
            update.set("error_type", items.s(resolution.error.type))
            update.set("error_message", items.s(resolution.error.message))
        update.require(self._pending(update))
        new, old = self._update(token_id, update)
        if new is not None:  # the data as given: no read back of a blob just written
            return replace(self._parse(new, load=False), data=resolution.data)
        if writes.ours(old, stamp):  # our own write, retried after a lost response
            return self._parse(old)
        if not old:
            raise TokenNotFoundError(token_id)
        raise TokenAlreadyResolvedError(token_id, items.req_s(old, "status"))

    def expire(self, token: TokenInfo, now: dt.datetime) -> TokenInfo:
        """Time the token out while pending and past a deadline (see ``ports.TokenStore``)."""
        reason: TimeoutReason | None = expired_reason(token, now)
        if reason is None:
            return token
        update = Update()
        update.set("status", items.s(TokenStatus.TIMED_OUT.value))
        update.set("resolved_at", items.s(items.iso(now)))
        update.set("reason", items.s(reason))
        update.set(items.TTL_ATTRIBUTE, items.n(items.epoch_seconds(now + self.retention)))
        pending = self._pending(update)
        if reason == "timeout":
            at = update.value("now", items.s(items.iso(now)))
            update.require(f"{pending} AND {update.name('timeout_at')} <= {at}")
        else:
            # The heartbeat deadline is the last beat (else the creation) plus
            # the token's fixed heartbeat timeout: expired only while no beat
            # came since the cutoff.
            seconds = token.heartbeat_timeout or 0.0
            cutoff = update.value("cutoff", items.s(items.iso(now - dt.timedelta(seconds=seconds))))
            beat, created = update.name("last_heartbeat_at"), update.name("created_at")
            update.require(
                f"{pending} AND ({beat} <= {cutoff} OR "
                f"(attribute_not_exists({beat}) AND {created} <= {cutoff}))"
            )
        new, old = self._update(token.token_id, update)
        if new is not None:
            return self._parse(new)
        if not old:
            raise TokenNotFoundError(token.token_id)
        return self._parse(old)  # a completion won, or a heartbeat moved the deadline

    def heartbeat(self, token_id: str, now: dt.datetime) -> TokenInfo:
        """Record a heartbeat on the pending token (see ``ports.TokenStore.heartbeat``)."""
        update = Update()
        update.set("last_heartbeat_at", items.s(items.iso(now)))
        update.require(self._pending(update))
        new, old = self._update(token_id, update)
        if new is not None:
            return self._parse(new)
        if not old:
            raise TokenNotFoundError(token_id)
        raise TokenAlreadyResolvedError(token_id, items.req_s(old, "status"))

    # -- requests ------------------------------------------------------------------------

    @staticmethod
    def _pending(update: Update) -> str:
        status = update.name("status")
        pending = update.value("pending", items.s(TokenStatus.PENDING.value))
        return f"attribute_exists(pk) AND {status} = {pending}"

    def _update(self, token_id: str, update: Update) -> tuple[Item | None, Item]:
        """Apply ``update``: ``(the item now, {})``, or ``(None, the item as it was)`` if refused.

        The item comes back with the response either way (``{}``: no such
        token), so no operation reads it again.
        """
        try:
            response = self.client.update_item(
                **update.request(self.table, token_key(token_id)),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if writes.error_code(exc) != writes.CONDITION_FAILED:
                raise
            return None, _old_item(exc) or {}
        return response["Attributes"], {}

    def _require(self, token_id: str) -> TokenInfo:
        token = self.get(token_id)
        if token is None:
            raise TokenNotFoundError(token_id)
        return token

    # -- items ---------------------------------------------------------------------------

    def _item(self, token: TokenInfo) -> Item:
        item: Item = {
            **token_key(token.token_id),
            "type": items.s("token"),
            "token_id": items.s(token.token_id),
            "run_id": items.s(token.run_id),
            "status": items.s(token.status.value),
            "created_at": items.s(items.iso(token.created_at)),
        }
        if token.timeout_at is not None:
            # Resolved by then at the latest; its resolution moves the ttl again.
            item[items.TTL_ATTRIBUTE] = items.n(
                items.epoch_seconds(token.timeout_at + self.retention)
            )
        items.put_optional(item, "name", token.name)
        items.put_optional(item, "last_heartbeat_at", token.last_heartbeat_at)
        items.put_optional(item, "timeout_at", token.timeout_at)
        if token.heartbeat_timeout is not None:
            item["heartbeat_timeout"] = items.n(float(token.heartbeat_timeout))
        if token.tags:
            item["tags"] = {"L": [items.s(tag) for tag in token.tags]}
        if token.secret_hashes:
            item["secret_hashes"] = {"SS": list(token.secret_hashes)}
        return item

    def _parse(self, item: Item, *, load: bool = True) -> TokenInfo:
        return loaded_token(item, self.values) if load else parse_token(item)[0]


def _old_item(exc: ClientError) -> Item | None:
    return cast("Item | None", cast("dict[str, Any]", exc.response).get("Item"))
