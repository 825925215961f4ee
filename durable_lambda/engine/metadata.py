"""How a run's metadata is stored: its values and its replay marks, as one JSON document. Pure.

``ctx.metadata`` (``durable_lambda/metadata.py``) changes values while a run
executes; each change is written with the invocation's next record or
checkpoint. The marks count, per scope, the metadata calls and log lines the
task body already made live, so a replay that runs those calls again skips
them instead of applying them twice (see ``durable_lambda/metadata.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_lambda import serde
from durable_lambda.errors import PayloadTooLarge

#: The most a run's metadata values may take, encoded (bytes).
METADATA_LIMIT = 32 * 1024


def encode_values(values: Mapping[str, Any]) -> str:
    """``values`` as JSON, refused above :data:`METADATA_LIMIT`.

    Raises:
        PayloadTooLarge: Naming the encoded size and the limit.
        SerializationError: A value has no JSON form.
    """
    text = serde.encode(dict(values))
    size = len(text.encode())
    if size > METADATA_LIMIT:
        raise PayloadTooLarge("run metadata", size, METADATA_LIMIT)
    return text


def encode_doc(values: Mapping[str, Any], marks: Mapping[str, int]) -> str:
    """The stored document: values and marks together, so they never disagree."""
    return serde.encode({"values": dict(values), "marks": dict(marks)})


def decode_doc(text: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    """Values and marks of a stored document (empty when ``text`` is ``None``)."""
    if not text:
        return {}, {}
    doc = serde.decode(text)
    return dict(doc.get("values", {})), {k: int(v) for k, v in doc.get("marks", {}).items()}
