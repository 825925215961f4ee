"""Fields named by redact_log_fields are masked in the lines task code logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from durable_lambda import TaskContext, redact_log_fields, step, task
from durable_lambda.observability import logger as library_logger
from durable_lambda.redaction import MASK, redacted_fields


@pytest.fixture(autouse=True)
def _no_redaction_after() -> Iterator[None]:
    yield
    redact_log_fields()


def test_named_fields_are_masked_top_level_and_nested_others_kept(registry, runner, caplog):
    @step
    def charge(ctx: TaskContext) -> int:
        ctx.logger.info(
            "charging",
            extra={"email": "a@b.c", "card": {"number": "4242", "brand": "visa"}, "amount": 42},
        )
        return 42

    @task(id="redacted", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.logger.info("start", extra={"email": "a@b.c"})
        return await charge(ctx)

    redact_log_fields("email", "card.number")
    with caplog.at_level(logging.INFO):
        runner.run(run, 1)
    lines = [r for r in caplog.records if r.name.startswith("durable-lambda.")]
    assert [r.getMessage() for r in lines] == ["start", "charging"]
    assert [r.email for r in lines] == [MASK, MASK]
    assert lines[1].card == {"number": MASK, "brand": "visa"}
    assert lines[1].amount == 42
    # The rendered JSON line (Powertools' formatter) carries the masks, not the values.
    rendered = library_logger.registered_formatter.format(lines[1])
    assert "a@b.c" not in rendered
    assert "4242" not in rendered
    assert json.loads(rendered)["card"]["brand"] == "visa"


def test_without_redaction_fields_are_logged_as_given(registry, runner, caplog):
    @task(id="plain", registry=registry)
    async def run(payload: int, ctx: TaskContext) -> int:
        ctx.logger.info("start", extra={"email": "a@b.c"})
        return payload

    with caplog.at_level(logging.INFO):
        runner.run(run, 1)
    (line,) = [r for r in caplog.records if r.name.startswith("durable-lambda.")]
    assert line.email == "a@b.c"
    assert redacted_fields() == ()


@pytest.mark.parametrize("bad", ["", "a..b", "1abc", "card.", "a b"])
def test_a_field_that_is_not_a_name_or_dotted_path_is_refused(bad):
    with pytest.raises(ValueError, match="must be a name or a dotted path"):
        redact_log_fields(bad)
