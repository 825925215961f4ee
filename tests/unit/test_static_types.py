"""``@task`` keeps the payload and output types, so mypy checks a trigger's payload and options.

Runs mypy (the project's configuration, a cache of its own) on a small user module.
"""

from __future__ import annotations

import re

from typecheck import mypy_output

USER_MODULE = """\
from typing import assert_type

from pydantic import BaseModel

from durable_lambda import RunHandle, Task, TaskContext, task


class OrderIn(BaseModel):
    order_id: str


@task(id="typed-with-context")
async def with_context(payload: OrderIn, ctx: TaskContext) -> dict[str, int]:
    return {}


@task(id="typed-without-context")
async def without_context(payload: int) -> str:
    return ""


assert_type(with_context, Task[OrderIn, dict[str, int]])
assert_type(without_context, Task[int, str])
assert_type(without_context.trigger(1, delay=5, tags=["a"], priority=2), RunHandle)
without_context.trigger("not an int")  # expect: arg-type
without_context.trigger(1, delai=5)  # expect: call-arg
without_context.trigger(1, priority="high")  # expect: arg-type
"""


def test_mypy_checks_a_triggers_payload_and_options(tmp_path):
    out = mypy_output(tmp_path, "user_tasks.py", USER_MODULE)
    errors = sorted(
        (int(line), code)
        for line, code in re.findall(
            r"user_tasks\.py:(\d+): error: .*\[([a-z-]+)\]$", out, re.MULTILINE
        )
    )
    expected = [
        (number, line.rsplit("# expect: ", 1)[1])
        for number, line in enumerate(USER_MODULE.splitlines(), start=1)
        if "# expect: " in line
    ]
    assert len(expected) == 3
    assert errors == expected, out
