from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from durable_lambda import serde
from durable_lambda.errors import SerializationError

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
special = st.one_of(
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.binary(),
    st.uuids(),
)
values = st.recursive(
    st.one_of(json_scalars, special),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@given(values)
def test_values_round_trip(value):
    assert serde.decode(serde.encode(value)) == value


@given(
    st.dictionaries(
        st.sampled_from(["$uuid", "$bytes", "$map", "$decimal", "x"]), st.text(), max_size=1
    )
)
def test_user_dicts_that_look_like_tags_round_trip(value):
    assert serde.decode(serde.encode(value)) == value


class Item(BaseModel):
    sku: str
    at: dt.datetime
    price: Decimal


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_pydantic_models_round_trip_with_an_annotation():
    item = Item(sku="a", at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), price=Decimal("9.99"))
    text = serde.encode([item])
    assert serde.decode(text, list[Item]) == [item]
    assert serde.decode(text)[0]["price"] == Decimal("9.99")


def test_dataclasses_encode_as_fields():
    assert serde.decode(serde.encode(Point(1, 2))) == {"x": 1, "y": 2}
    assert serde.decode(serde.encode(Point(1, 2)), Point) == Point(1, 2)


def test_tuples_and_sets_come_back_as_list_and_set():
    assert serde.decode(serde.encode((1, 2))) == [1, 2]
    assert serde.decode(serde.encode({3, 1})) == {1, 3}


def test_unserialisable_values_raise_a_clear_error():
    with pytest.raises(SerializationError, match="object is not JSON-serialisable"):
        serde.encode(object())


def test_nan_is_rejected_rather_than_written_as_invalid_json():
    with pytest.raises(SerializationError):
        serde.encode(float("nan"))


def test_uuid_and_bytes_are_restored():
    key = uuid.uuid4()
    assert serde.decode(serde.encode({"k": key, "b": b"\x00"})) == {"k": key, "b": b"\x00"}


@given(st.none() | st.booleans() | st.integers() | st.integers(min_value=10**4290))
def test_scalars_encode_as_the_json_encoder_writes_them(value: object) -> None:
    # encode() writes ints, bools and None itself; the text must be the encoder's.
    try:
        expected = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:  # an int past Python's digit limit
        with pytest.raises(SerializationError, match="integer string conversion"):
            serde.encode(value)
    else:
        assert serde.encode(value) == expected
        assert serde.decode(expected) == value
