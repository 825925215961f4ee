"""The blob store on S3: content-addressed values, written once, refreshed when reused old."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from durable_lambda.values import BLOB_REFRESH_AFTER

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

#: Attempts at a put that met another conditional put of the same key in flight,
#: or a reused object that expired between its discovery and its refresh.
PUT_ATTEMPTS = 3
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3BlobStore:
    """:class:`~durable_lambda.ports.BlobStore` on one S3 bucket.

    Keys are content hashes, so a key that already exists holds the same bytes:
    puts are conditional (``IfNoneMatch='*'``) and an existing key is success.
    The bucket's lifecycle rule expires objects by age, so an existing object
    older than :data:`~durable_lambda.values.BLOB_REFRESH_AFTER` is copied onto
    itself (``MetadataDirective='REPLACE'`` resets ``LastModified``): a new value
    costs one request, a reused one two, a reused old one three.

    Args:
        client: A boto3 S3 client.
        bucket: The bucket.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        """Wire the store to its bucket."""
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` unless it is already there; refresh it if old."""
        for attempt in range(PUT_ATTEMPTS):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "PreconditionFailed" and self._refreshed(key):
                    return  # the same content is already stored, and young enough
                if attempt + 1 < PUT_ATTEMPTS and code in {
                    "PreconditionFailed",  # expired before its refresh: write it again
                    "ConditionalRequestConflict",  # another writer of the same key in flight
                }:
                    continue
                raise
            return

    def _refreshed(self, key: str) -> bool:
        """Reset the age of ``key`` if it is old; False if it is gone (expired meanwhile)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            if dt.datetime.now(dt.UTC) - head["LastModified"] <= BLOB_REFRESH_AFTER:
                return True
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _MISSING:
                return False
            raise
        return True

    def get(self, key: str) -> bytes:
        """The bytes under ``key``.

        Raises:
            KeyError: No such key (as the memory store does).
        """
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in {"NoSuchKey", "404"}:
                raise KeyError(key) from None
            raise
        return response["Body"].read()
