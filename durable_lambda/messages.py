"""Resume messages: the wire format ``{"run_id": "...", "epoch": N}`` and the one send.

A child's nudge to its parent also names the child: ``"child": "<run id>"``.
"""

from __future__ import annotations

import json

from durable_lambda.engine.records import ANY_EPOCH, ResumeMessage
from durable_lambda.engine.resume import ResumePlan
from durable_lambda.errors import TerminalError
from durable_lambda.ports import ResumeQueue

MAX_BODY = 1024


def send_resume(queue: ResumeQueue, message: ResumeMessage, plan: ResumePlan) -> bool:
    """Send ``message`` as ``plan`` says; nothing when a timer carries the wake-up instead.

    Returns:
        Whether a message was sent.
    """
    if plan.timer:
        return False
    queue.send(message, plan.delay_seconds)
    return True


class PoisonMessageError(TerminalError):
    """A message body that can never be processed; SQS moves it to the DLQ."""


def encode_message(message: ResumeMessage) -> str:
    """The body of a resume message."""
    data: dict[str, object] = {"run_id": message.run_id, "epoch": message.epoch}
    if message.child is not None:
        data["child"] = message.child
    return json.dumps(data, separators=(",", ":"))


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
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < ANY_EPOCH:
        raise PoisonMessageError(
            f"message field epoch must be an integer >= 0 (or {ANY_EPOCH}: a child's nudge)"
        )
    child = data.get("child")
    if child is not None and (not isinstance(child, str) or not child or epoch != ANY_EPOCH):
        raise PoisonMessageError(
            f"message field child must be a non-empty string, on a nudge (epoch {ANY_EPOCH}) only"
        )
    return ResumeMessage(run_id=run_id, epoch=epoch, child=child)
