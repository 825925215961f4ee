"""Redaction of user fields in the log lines task code writes (``ctx.logger``).

The library never logs payloads, outputs or error messages; task code may.
:func:`redact_log_fields` names fields to mask wherever a line carries them,
at the top level (``"email"``) or nested in a dict (``"card.number"``), using
Powertools' data masking::

    durable_lambda.redact_log_fields("email", "card.number")
    ctx.logger.info("charged", extra={"email": "a@b.c", "card": {"number": "4242"}})
    # -> "email": "*****", "card": {"number": "*****"}
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["MASK", "RedactFilter", "redact_log_fields", "redacted_fields"]

#: What a redacted value is replaced with (Powertools' data masking's own mask).
MASK = "*****"

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_lock = threading.Lock()
_fields: tuple[str, ...] = ()


def redact_log_fields(*fields: str) -> None:
    """Mask these fields in every line task code logs from now on (replacing the previous set).

    Args:
        fields: Field names (``"email"``) or dotted paths into a dict field
            (``"card.number"``). None: stop redacting.

    Raises:
        ValueError: A field is not a name or a dotted path of names.
    """
    global _fields  # noqa: PLW0603 - one redaction policy per process
    for name in fields:
        if not _FIELD.match(name):
            raise ValueError(
                f"log field to redact {name!r} must be a name or a dotted path of names"
            )
    with _lock:
        _fields = tuple(dict.fromkeys(fields))


def redacted_fields() -> tuple[str, ...]:
    """The fields masked now."""
    return _fields


class RedactFilter(logging.Filter):
    """A logging filter masking the :func:`redact_log_fields` fields on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask what the record carries; never drop it."""
        for path in _fields:
            top, _, rest = path.partition(".")
            if top not in record.__dict__:
                continue
            value = record.__dict__[top]
            if not rest:
                record.__dict__[top] = MASK
            elif isinstance(value, dict):
                record.__dict__[top] = _erase(value, rest)
        return True


def _erase(value: dict[str, Any], path: str) -> Any:
    from aws_lambda_powertools.utilities.data_masking import DataMasking  # noqa: PLC0415

    return DataMasking().erase(value, fields=[path])
