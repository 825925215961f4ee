"""The step path's shortcuts give exactly what the long way would.

A step's live value skips the JSON round trip when it is a plain scalar, and
the engine reads a plain function's code flags instead of asking ``inspect``:
both must agree with the long way for every input, or a live call and its
replay would see different values, or a body would run outside its task.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_lambda import serde
from durable_lambda.engine.calls import StepCall, StepSpec, checked_value, is_async
from durable_lambda.engine.composition import _recordable
from durable_lambda.engine.journal import Call, EntryStatus
from durable_lambda.errors import SerializationError

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
annotations: st.SearchStrategy[Any] = st.sampled_from([None, Any, int, float, str, bool])


@given(value=scalars, annotation=annotations)
def test_a_scalar_is_returned_as_its_replay_would_decode_it(value: Any, annotation: Any) -> None:
    try:
        expected = serde.decode(serde.encode(value), annotation)
    except SerializationError:
        with pytest.raises(SerializationError):  # the shortcut must refuse it too
            checked_value("step 's#0'", value, annotation)
        return
    encoded, live = checked_value("step 's#0'", value, annotation)
    assert encoded == serde.encode(value)
    assert live == expected
    assert type(live) is type(expected)
    plain, typed = _recordable(lambda: "branch 'b'", value, annotation)  # a batch branch's value
    assert plain == serde.decode(serde.encode(value))
    assert type(plain) is type(value)
    assert typed == expected
    assert type(typed) is type(expected)


def sync_body() -> int:
    return 1


async def async_body() -> int:
    return 1


class Holder:
    def sync(self) -> int:
        return 1

    async def run(self) -> int:
        return 1

    async def __call__(self) -> int:
        return 1


def test_is_async_agrees_with_inspect_for_every_kind_of_callable() -> None:
    holder = Holder()
    callables: list[Callable[..., Any]] = [
        sync_body,
        async_body,
        lambda: 1,
        holder.sync,
        holder.run,
        holder,
        functools.partial(async_body),
        functools.partial(sync_body),
        print,
    ]
    for fn in callables:
        assert is_async(fn) is inspect.iscoroutinefunction(fn), fn
    assert [is_async(f) for f in (sync_body, async_body, holder.run)] == [False, True, True]


@given(
    st.tuples(
        st.integers(0, 10**6), st.text(max_size=8), st.integers(0, 10**6), st.integers(0, 99)
    ),
    st.integers(1, 9),
    st.text(max_size=8),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.floats(0, 1e6),
)
def test_a_completed_entry_built_by_position_is_the_one_built_by_name(
    place: tuple[int, str, int, int],
    attempt: int,
    result: str,
    started: dt.datetime,
    seconds: float,
) -> None:
    # StepCall.completed relies on JournalEntry's field order: a reorder must fail here.
    call = StepCall(StepSpec("charge"), Call(*place, None), attempt)
    ended = started + dt.timedelta(seconds=seconds)
    assert call.completed(result, started, ended) == call.entry(
        EntryStatus.COMPLETED, result=result, started_at=started, ended_at=ended
    )
