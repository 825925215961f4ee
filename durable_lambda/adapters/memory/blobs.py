"""Blobs in memory: the reference for the S3 blob store."""

from __future__ import annotations

import datetime as dt

from durable_lambda.values import BLOB_REFRESH_AFTER


class MemoryBlobStore:
    """Blobs in a dict, with the time each was last written (what S3 expires by)."""

    def __init__(self) -> None:
        """Start empty."""
        self.blobs: dict[str, bytes] = {}
        self.modified: dict[str, dt.datetime] = {}

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` (first write wins, as with S3 ``IfNoneMatch``); refresh an old blob."""
        now = dt.datetime.now(dt.UTC)
        self.blobs.setdefault(key, data)
        if now - self.modified.get(key, dt.datetime.min.replace(tzinfo=dt.UTC)) > (
            BLOB_REFRESH_AFTER
        ):
            self.modified[key] = now

    def get(self, key: str) -> bytes:
        """The bytes under ``key``."""
        return self.blobs[key]
