"""The Lambda handlers, built from settings: the worker (SQS) and the scheduler (EventBridge).

The functions under ``functions/`` are one line each; everything is here so
the local emulator and the tests run exactly the handlers Lambda runs.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from durable_lambda.messages import decode_message
from durable_lambda.observability import logger
from durable_lambda.services import Services
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry
from durable_lambda.worker import Invocation

if TYPE_CHECKING:
    from durable_lambda.adapters.aws import AwsPorts
    from durable_lambda.scheduler import Scheduler
    from durable_lambda.worker import Worker

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(slots=True)
class _App:
    settings: Settings
    ports: AwsPorts
    worker: Worker
    scheduler: Scheduler


_app: _App | None = None


def _build(settings: Settings | None = None) -> _App:
    """Build (once per process) the ports and services from settings."""
    global _app  # noqa: PLW0603 - one app per Lambda execution environment, reused warm
    if _app is not None and settings is None:
        return _app
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415 - boto3 at cold start only

    settings = settings or Settings.from_env()
    for module in settings.task_modules:
        importlib.import_module(module)
    ports = aws_ports(settings)
    services = Services.build(
        store=ports.store,
        flow=ports.flow,
        queue=ports.queue,
        clock=ports.clock,
        registry=default_registry,
        settings=settings,
        dead_letters=ports.dead_letters,
    )
    worker, scheduler = services.worker, services.scheduler
    _app = _App(settings, ports, worker, scheduler)
    return _app


def warm() -> None:
    """Build the app during Lambda's init phase, outside the first invocation's timeout."""
    _build()


def reset() -> None:
    """Forget the cached app (tests that change settings between handlers)."""
    global _app  # noqa: PLW0603
    _app = None


def worker_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS-triggered worker: each record is one resume message; failures are reported per item."""
    app = _build()
    invocation = Invocation(
        request_id=str(getattr(context, "aws_request_id", "local")),
        remaining=lambda: float(context.get_remaining_time_in_millis()) / 1000.0,
        timeout=app.settings.function_timeout,
    )

    def record_handler(record: SQSRecord) -> None:
        try:
            message = decode_message(record.body)
            report = app.worker.handle(message, invocation)
        except Exception as exc:
            logger.warning(
                "resume message failed",
                extra={"message_id": record.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            # Come back soon rather than after the queue's long visibility timeout.
            receives = int(record.attributes.approximate_receive_count or 1)
            app.ports.queue.retry_later(record.receipt_handle, min(900, 5 * receives))
            raise
        logger.info(
            "resume message processed",
            extra={
                "run_id": report.run_id,
                "action": report.action,
                "status": report.status.value if report.status else None,
                "steps_executed": report.steps_executed,
                "steps_replayed": report.steps_replayed,
            },
        )

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def scheduler_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:  # noqa: ARG001
    """EventBridge-triggered scheduler tick."""
    report = _build().scheduler.tick()
    logger.info("scheduler tick", extra=dataclasses.asdict(report))
    return dataclasses.asdict(report)
