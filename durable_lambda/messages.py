"""The resume message's wire format: ``{"run_id": "...", "epoch": N}`` and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import math

from durable_lambda.errors import TerminalError
from durable_lambda.records import ResumeMessage

MAX_BODY = 1024
#: SQS's longest DelaySeconds; later wake-ups go through the timer index.
MAX_DELAY_SECONDS = 900


def delay_until(wake_at: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds from ``now`` until ``wake_at`` (0 when due, or when ``None``)."""
    if wake_at is None:
        return 0.0
    return max(0.0, (wake_at - now).total_seconds())


def sqs_delay(seconds: float) -> int:
    """``seconds`` as SQS DelaySeconds: whole seconds, rounded up (never early), capped."""
    return min(MAX_DELAY_SECONDS, math.ceil(max(0.0, seconds)))


class PoisonMessageError(TerminalError):
    """A message body that can never be processed; SQS moves it to the DLQ."""


def encode_message(message: ResumeMessage) -> str:
    """The body of a resume message."""
    return json.dumps({"run_id": message.run_id, "epoch": message.epoch}, separators=(",", ":"))


def decode_message(body: str) -> ResumeMessage:
    """Parse a resume message body strictly.

    Raises:
        PoisonMessageError: Naming what is wrong with the body.
    """
    if len(body) > MAX_BODY:
        raise PoisonMessageError(f"message body is {len(body)} characters, above {MAX_BODY}")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise PoisonMessageError(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PoisonMessageError("message body must be a JSON object")
    run_id, epoch = data.get("run_id"), data.get("epoch")
    if not isinstance(run_id, str) or not run_id:
        raise PoisonMessageError("message field run_id must be a non-empty string")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise PoisonMessageError("message field epoch must be an integer >= 0")
    return ResumeMessage(run_id=run_id, epoch=epoch)
