"""Keep the dev stack's state across restarts: the table's items and the bucket's objects as JSON.

moto keeps everything in memory and offers no snapshot of a backend's state
(its recorder replays every recorded request, SQS receives and deletes
included, which does not rebuild a queue). What a run needs to go on is in
DynamoDB (runs, journals, tokens, queue counters, the catalog) and S3 (large
values): :func:`save` writes both to one JSON file on stop and :func:`load`
puts them back on start. Messages in flight on SQS are not kept: the
scheduler re-sends the message of any run left QUEUED or SUSPENDED past its
due time (``DL_STRANDED_AFTER_SECONDS``), so a restored run resumes by itself.
The stack's callback key is kept too: a wait token's callback URL carries a
secret derived from it, so a URL handed out before a restart still works after.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from durable_lambda.adapters.aws.dynamodb.batches import write_items
from durable_lambda.errors import DurableLambdaError

if TYPE_CHECKING:
    import boto3

    from durable_lambda.settings import Settings

#: Bumped when the file's layout changes; a file of another format is refused.
FORMAT = 1


class StateFileError(DurableLambdaError):
    """A ``--persist`` file cannot be read back (names the file and why)."""


def save(path: Path, session: boto3.session.Session, settings: Settings) -> tuple[int, int]:
    """Write the table's items and the bucket's objects to ``path`` (atomically).

    Returns:
        How many items and objects were written.
    """
    dynamodb = session.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=settings.table_name):
        items.extend(_encode(item) for item in page.get("Items", []))
    s3 = session.client("s3")
    objects: dict[str, str] = {}
    for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket_name):
        for entry in listing.get("Contents", []):
            body = s3.get_object(Bucket=settings.bucket_name, Key=entry["Key"])["Body"].read()
            objects[entry["Key"]] = base64.b64encode(body).decode("ascii")
    document = {
        "format": FORMAT,
        "items": items,
        "objects": objects,
        "callback_key": settings.callback_key,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document), encoding="utf-8")
    # A crash mid-write must not destroy the previous good state.
    partial.replace(path)
    return len(items), len(objects)


def load(path: Path, session: boto3.session.Session, settings: Settings) -> tuple[int, int]:
    """Put the items and objects saved in ``path`` back (nothing when it does not exist yet).

    Returns:
        How many items and objects were restored.

    Raises:
        StateFileError: The file is not JSON or not of this format.
    """
    document = _read(path)
    if document is None:
        return 0, 0
    items = [_decode(item) for item in document.get("items", [])]
    puts: Any = [{"PutRequest": {"Item": item}} for item in items]
    write_items(session.client("dynamodb"), settings.table_name, puts, "saved items")
    s3 = session.client("s3")
    objects: dict[str, str] = document.get("objects", {})
    for key, body in objects.items():
        s3.put_object(Bucket=settings.bucket_name, Key=key, Body=base64.b64decode(body))
    return len(items), len(objects)


def saved_callback_key(path: Path) -> str | None:
    """The callback key saved in ``path`` (``None``: no file yet, or saved before keys were kept).

    Raises:
        StateFileError: The file is not JSON or not of this format.
    """
    document = _read(path)
    key = document.get("callback_key") if document is not None else None
    return key if isinstance(key, str) and key else None


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateFileError(f"cannot read the dev state file {str(path)!r}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateFileError(
            f"dev state file {str(path)!r} is not of format {FORMAT}; move it away to start fresh"
        )
    return document


# DynamoDB's typed JSON is JSON except for binary values: base64 them, as its wire format does.


def _encode(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _convert(value, _b64encode) for name, value in item.items()}


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _convert(value, base64.b64decode) for name, value in item.items()}


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _convert(typed: dict[str, Any], binary: Any) -> dict[str, Any]:
    """One attribute value (``{"S": ...}``, ``{"M": {...}}``, ...) with its binaries converted."""
    ((kind, value),) = typed.items()
    if kind == "B":
        return {kind: binary(value)}
    if kind == "BS":
        return {kind: [binary(v) for v in value]}
    if kind == "M":
        return {kind: {k: _convert(v, binary) for k, v in value.items()}}
    if kind == "L":
        return {kind: [_convert(v, binary) for v in value]}
    return {kind: value}
