"""The blob store on S3: content-addressed values, written once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

#: Attempts at a put that met another conditional put of the same key in flight.
PUT_ATTEMPTS = 3


class S3BlobStore:
    """:class:`~durable_lambda.ports.BlobStore` on one S3 bucket.

    Keys are content hashes, so a key that already exists holds the same bytes:
    puts are conditional (``IfNoneMatch='*'``) and an existing key is success.

    Args:
        client: A boto3 S3 client.
        bucket: The bucket.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        """Wire the store to its bucket."""
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` unless it is already there."""
        for attempt in range(PUT_ATTEMPTS):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "PreconditionFailed":
                    return  # the same content is already stored
                if code == "ConditionalRequestConflict" and attempt + 1 < PUT_ATTEMPTS:
                    continue  # another writer of the same key is in flight
                raise
            return

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
