"""Opaque, tamper-checked cursors for ``GET /runs``.

A cursor carries the last run of a page (creation time and run id) and the
hash of the query it belongs to, signed with HMAC-SHA256 under a key from the
settings. A forged cursor, or one from another query, is refused (400): it can
never turn into a read of a different listing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping

from durable_lambda.errors import DurableLambdaError

_SIGNATURE_BYTES = 32


class BadCursorError(DurableLambdaError):
    """A cursor that was not issued by this API for this query."""


def _query_hash(query: Mapping[str, str | None]) -> str:
    canonical = json.dumps({k: v for k, v in query.items() if v is not None}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def encode_cursor(
    key: bytes, query: Mapping[str, str | None], position: tuple[dt.datetime, str]
) -> str:
    """The cursor continuing ``query`` after ``position``."""
    body = json.dumps(
        {"q": _query_hash(query), "t": position[0].isoformat(), "r": position[1]},
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature + body).decode().rstrip("=")


def decode_cursor(
    key: bytes, query: Mapping[str, str | None], cursor: str
) -> tuple[dt.datetime, str]:
    """The position ``cursor`` continues from, checked against ``key`` and ``query``.

    Raises:
        BadCursorError: Not signed with ``key``, malformed, or issued for another query.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise BadCursorError("cursor is not valid base64url") from None
    signature, body = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
    expected = hmac.new(key, body, hashlib.sha256).digest()
    if len(signature) != _SIGNATURE_BYTES or not hmac.compare_digest(signature, expected):
        raise BadCursorError("cursor signature does not match: it was not issued by this API")
    try:
        fields = json.loads(body)
        position = (dt.datetime.fromisoformat(fields["t"]), str(fields["r"]))
        belongs = fields["q"] == _query_hash(query)
    except (ValueError, KeyError, TypeError):
        raise BadCursorError("cursor body is malformed") from None
    if not belongs:
        raise BadCursorError("cursor belongs to another query: repeat the query it came from")
    return position
