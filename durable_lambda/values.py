"""Where a stored value lives: inline in its DynamoDB item, or in S3 when large."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from durable_lambda.engine.frozen import frozen_record
from durable_lambda.engine.journal import ErrorInfo, JournalEntry
from durable_lambda.errors import PayloadTooLarge
from durable_lambda.ports import BlobStore

BLOB_PREFIX = "values/sha256/"
#: A reused blob older than this has its age reset. Blobs are shared by content
#: and the bucket expires them by age (template.yaml's ``BlobRetentionDays``), so
#: a run referencing an old blob could otherwise lose it the next day; with the
#: refresh, a blob outlives its latest reference by the retention minus one day,
#: and reuse costs a write at most once a day per blob.
BLOB_REFRESH_AFTER = dt.timedelta(days=1)
#: Bytes one record (a DynamoDB item) may hold in values before DynamoDB's 400 KB
#: item limit, leaving room for keys and the other attributes.
RECORD_VALUE_BUDGET = 380 * 1024


@frozen_record
class StoredValue:
    """A value as written: exactly one of ``inline`` (JSON text) or ``ref`` (blob key)."""

    inline: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ValueStore:
    """Decides inline versus blob and enforces the maximum size.

    Attributes:
        blobs: Where large values go.
        inline_limit: Values up to this many bytes stay inline.
        max_bytes: Larger values are refused with :class:`PayloadTooLarge`.
    """

    blobs: BlobStore
    inline_limit: int
    max_bytes: int

    def store(self, what: str | Callable[[], str], text: str) -> StoredValue:
        """Store ``text`` (JSON); ``what`` names it in errors, e.g. ``"step 'charge#0' result"``.

        ``what`` may be a callable, called only to name a value that is refused.
        """
        if len(text) * 4 <= self.inline_limit:
            return StoredValue(inline=text)  # four bytes per character at most: no need to count
        data = text.encode("utf-8")
        size = len(data)
        if size <= self.inline_limit:
            return StoredValue(inline=text)
        if size > self.max_bytes:
            raise PayloadTooLarge(what if isinstance(what, str) else what(), size, self.max_bytes)
        key = BLOB_PREFIX + hashlib.sha256(data).hexdigest()
        self.blobs.put(key, data)
        return StoredValue(ref=key)

    @property
    def secondary(self) -> ValueStore:
        """The store for a record's second value: an output beside the payload, an error.

        Its inline limit is smaller, so a record holding two values inline stays
        within :data:`RECORD_VALUE_BUDGET`. Every store routes through it alike.
        """
        limit = min(self.inline_limit, (RECORD_VALUE_BUDGET - self.inline_limit) // 2)
        return replace(self, inline_limit=max(limit, 0))

    def store_error(self, what: str, error: ErrorInfo) -> StoredValue:
        """Store ``error`` as JSON, as a second value (a traceback may be large)."""
        return self.secondary.store(what, error_text(error))

    def store_entry(self, entry: JournalEntry) -> tuple[StoredValue | None, StoredValue | None]:
        """A journal entry's result and error as stored (``None`` for what it does not hold).

        Refused values are named ``step 'key' result`` (or ``error``); the name
        is built only then, not at each of a run's steps.
        """
        result = error = None
        if entry.result is not None:
            result = self.store(lambda: f"step {entry.key!r} result", entry.result)
        if entry.error is not None:
            error = self.store_error(f"step {entry.key!r} error", entry.error)
        return result, error

    def load_error(self, value: StoredValue) -> ErrorInfo:
        """The error stored by :meth:`store_error`."""
        return parse_error(self.load(value))

    def load(self, value: StoredValue) -> str:
        """The JSON text of a stored value."""
        if value.ref is not None:
            return self.blobs.get(value.ref).decode("utf-8")
        return value.inline if value.inline is not None else "null"


def error_text(error: ErrorInfo) -> str:
    """An error as JSON text (stored like any value: inline, or a blob when large)."""
    return json.dumps(
        {"type": error.type, "message": error.message, "traceback": error.traceback},
        separators=(",", ":"),
    )


def parse_error(text: str) -> ErrorInfo:
    """An error written by :func:`error_text`."""
    data = json.loads(text)
    return ErrorInfo(
        type=data["type"], message=data["message"], traceback=data.get("traceback", "")
    )
