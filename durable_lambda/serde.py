"""JSON encoding of stored values: payloads, step results, outputs.

Plain JSON types pass through unchanged. A few Python types that JSON lacks
are written as single-key tagged objects and restored on decode without any
annotation: ``datetime``, ``date``, ``time``, ``timedelta``, ``Decimal``,
``bytes``, ``UUID``, ``set``. Pydantic models and dataclasses are written as
their fields; give the step or task a return annotation to get the model back
(:func:`decode` validates against it). Nothing is ever pickled.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from durable_lambda.errors import SerializationError

_TAG_PREFIX = "$"
_ESCAPE = "$map"


# Checked in order: datetime before date (a datetime is a date).
_TAGGED: tuple[tuple[type | tuple[type, ...], str, Any], ...] = (
    (dt.datetime, "$datetime", lambda v: v.isoformat()),
    (dt.date, "$date", lambda v: v.isoformat()),
    (dt.time, "$time", lambda v: v.isoformat()),
    (dt.timedelta, "$timedelta", lambda v: v.total_seconds()),
    (Decimal, "$decimal", str),
    (
        (bytes, bytearray, memoryview),
        "$bytes",
        lambda v: base64.b64encode(bytes(v)).decode("ascii"),
    ),
    (uuid.UUID, "$uuid", str),
    ((set, frozenset), "$set", lambda v: sorted(v, key=repr)),
)


def _encode_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    for kind, tag, convert in _TAGGED:
        if isinstance(value, kind):
            return {tag: convert(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__qualname__} is not JSON-serialisable")


_DECODERS: dict[str, Any] = {
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$timedelta": lambda s: dt.timedelta(seconds=s),
    "$decimal": Decimal,
    "$bytes": lambda s: base64.b64decode(s.encode("ascii")),
    "$uuid": uuid.UUID,
    "$set": set,
    # An escaped user dict is stored as key/value pairs: a list is never
    # passed to the object hook, so it cannot be mistaken for a tag.
    _ESCAPE: dict,
}


def _escape_user_dicts(value: Any) -> Any:
    """Wrap user dicts that look like our tags so decode leaves them alone."""
    if isinstance(value, dict):
        escaped = {k: _escape_user_dicts(v) for k, v in value.items()}
        if len(value) == 1:
            (key,) = value
            if isinstance(key, str) and key in _DECODERS:
                return {_ESCAPE: [[k, v] for k, v in escaped.items()]}
        return escaped
    if isinstance(value, list | tuple):
        return [_escape_user_dicts(v) for v in value]
    return value


def _needs_escape(text: str) -> bool:
    return '"$' in text


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        (key,) = obj
        if key[:1] == _TAG_PREFIX:
            decoder = _DECODERS.get(key)
            if decoder is not None:
                return decoder(obj[key])
    return obj


def encode(value: Any) -> str:
    """Encode ``value`` as compact JSON text.

    Raises:
        SerializationError: The value holds a type that has no JSON form.
    """
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    try:
        if type(value) is int:
            # As the encoder writes it: JSONEncoder.encode builds a C encoder
            # per call, even for the int most step results are.
            return int.__repr__(value)  # ValueError past the digit limit, as there
        text = _ENCODER.encode(value)
        if _needs_escape(text):
            # Rare: a user key starts with "$". Re-encode with escaping so a
            # user dict like {"$uuid": "x"} never decodes as a UUID.
            text = _ENCODER.encode(_escape_user_dicts(_to_plain(value)))
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot encode value as JSON: {exc}") from exc
    return text


def _to_plain(value: Any) -> Any:
    """Models and dataclasses to dicts, recursively, keeping tagged scalars."""
    if isinstance(value, BaseModel):
        return _to_plain(value.model_dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_plain(_encode_default(value))
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def decode(text: str, annotation: Any = None) -> Any:
    """Decode JSON text written by :func:`encode`.

    Args:
        text: The JSON text.
        annotation: Optional type to validate the value into (a pydantic model,
            ``list[Model]``, ...). ``None`` or ``Any`` returns the plain value.

    Raises:
        SerializationError: The text is not JSON or does not match ``annotation``.
    """
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:
        raise SerializationError(f"stored value is not valid JSON: {exc}") from exc
    return validate(value, annotation)


def validate(value: Any, annotation: Any) -> Any:
    """Validate plain JSON data ``value`` into ``annotation`` (``None`` or ``Any``: as is).

    Raises:
        SerializationError: The value does not match ``annotation``.
    """
    if annotation is None or annotation is Any:
        return value
    try:
        return adapter_for(annotation).validate_python(value)
    except ValidationError as exc:
        raise SerializationError(f"stored value does not match {annotation!r}: {exc}") from exc


#: One decoder for every value: ``json.loads`` with a hook builds a new one per call.
_DECODER = json.JSONDecoder(object_hook=_object_hook)
#: One encoder for every value, for the same reason (``json.dumps`` with options).
_ENCODER = json.JSONEncoder(default=_encode_default, separators=(",", ":"), allow_nan=False)


@lru_cache(maxsize=512)
def adapter_for(annotation: Any) -> TypeAdapter[Any]:
    """A cached pydantic ``TypeAdapter`` for ``annotation``."""
    return TypeAdapter(annotation)
