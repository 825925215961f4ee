"""The one builder of DynamoDB update and condition expressions. No I/O.

Every attribute name and value in an expression is an alias the builder
registered, so a request carries exactly the aliases its expressions use
(DynamoDB rejects unused ones) and no attribute name can clash with a reserved
word. Conditions are composed from the same aliases: ``u.name("count")``
returns ``#count`` and registers it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb import layout as items

if TYPE_CHECKING:
    from durable_lambda.adapters.aws.dynamodb.layout import Item
    from durable_lambda.values import StoredValue

_NOT_ALIAS = re.compile(r"[^A-Za-z0-9_]")


def _alias_of(attribute: str) -> str:
    # Aliases allow letters, digits and "_" only: ``holder#run_1`` becomes ``holder_run_1``.
    return _NOT_ALIAS.sub("_", attribute)


class Update:
    """An UpdateExpression and its condition under construction, every name and value aliased."""

    def __init__(self) -> None:
        """Start empty."""
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.conditions: list[str] = []
        self.names: dict[str, str] = {}
        self.values: Item = {}

    # -- aliases -----------------------------------------------------------------------

    def name(self, attribute: str) -> str:
        """The alias of ``attribute`` (registered)."""
        alias = f"#{_alias_of(attribute)}"
        self.names[alias] = attribute
        return alias

    def value(self, alias: str, value: Any) -> str:
        """Register ``value`` as ``:alias``; return ``:alias``."""
        placeholder = f":{alias}"
        self.values[placeholder] = value
        return placeholder

    # -- clauses -----------------------------------------------------------------------

    def set(self, attribute: str, value: Any) -> None:
        """``SET attribute = value``."""
        self.sets.append(f"{self.name(attribute)} = {self.value(_alias_of(attribute), value)}")

    def set_to(self, attribute: str, operand: str) -> None:
        """``SET attribute = operand``, ``operand`` built from this builder's aliases."""
        self.sets.append(f"{self.name(attribute)} = {operand}")

    def add(self, attribute: str, alias: str, value: Any) -> None:
        """``ADD attribute :alias`` (a number added, created from 0 when absent)."""
        self.adds.append(f"{self.name(attribute)} {self.value(alias, value)}")

    def remove(self, attribute: str) -> None:
        """``REMOVE attribute``."""
        self.removes.append(self.name(attribute))

    def set_or_remove(self, attribute: str, value: str | dt.datetime | None) -> None:
        """Set a string or time, or remove the attribute for ``None``."""
        if value is None:
            self.remove(attribute)
        else:
            text = items.iso(value) if isinstance(value, dt.datetime) else value
            self.set(attribute, items.s(text))

    def set_value(self, attribute: str, value: StoredValue) -> None:
        """Set a stored value, removing its other form (inline versus blob key)."""
        if value.ref is not None:
            self.set(f"{attribute}_ref", items.s(value.ref))
            self.remove(attribute)
        else:
            self.set(attribute, items.s(value.inline if value.inline is not None else "null"))
            self.remove(f"{attribute}_ref")

    def require(self, condition: str) -> None:
        """Apply the update only if ``condition`` (built from this builder's aliases) holds."""
        self.conditions.append(condition)

    # -- rendering ---------------------------------------------------------------------

    @property
    def expression(self) -> str:
        """The UpdateExpression text: its SET clause (if any) always first."""
        parts = []
        for keyword, clauses in (("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)):
            if clauses:
                parts.append(f"{keyword} {', '.join(clauses)}")
        return " ".join(parts)

    @property
    def condition(self) -> str:
        """The ConditionExpression text (``""``: unconditional)."""
        return " AND ".join(self.conditions)

    def request(self, table: str, key: Item, **options: Any) -> dict[str, Any]:
        """The UpdateItem parameters (or a transaction's ``Update``) with ``options`` added."""
        body: dict[str, Any] = {"TableName": table, "Key": key}
        if self.sets or self.adds or self.removes:
            body["UpdateExpression"] = self.expression
        if self.conditions:
            body["ConditionExpression"] = self.condition
        if self.names:
            body["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            body["ExpressionAttributeValues"] = dict(self.values)
        return {**body, **options}


def with_set(update: dict[str, Any], attribute: str, value: Any) -> dict[str, Any]:
    """A copy of a built ``update`` that also sets ``attribute`` to ``value``.

    It relies on :attr:`Update.expression` putting its SET clause first.
    """
    alias = _alias_of(attribute)
    expression = update.get("UpdateExpression", "")
    clause = f"#{alias} = :{alias}"
    if expression.startswith("SET "):
        expression = f"SET {clause}, {expression[4:]}"
    else:
        expression = f"SET {clause} {expression}".rstrip()
    return {
        **update,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {
            **update.get("ExpressionAttributeNames", {}),
            f"#{alias}": attribute,
        },
        "ExpressionAttributeValues": {
            **update.get("ExpressionAttributeValues", {}),
            f":{alias}": value,
        },
    }
