"""The Lambda handlers, built from settings: worker (SQS), scheduler (EventBridge), reaper (stream).

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
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from durable_lambda import catalog
from durable_lambda.errors import RunNotFoundError, UnknownTaskError
from durable_lambda.messages import PoisonMessageError, decode_message
from durable_lambda.observability import logger, run_metrics, run_traces, step_lines
from durable_lambda.services import Services, build_services
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry
from durable_lambda.worker import Invocation

if TYPE_CHECKING:
    from durable_lambda.adapters.aws import AwsPorts
    from durable_lambda.adapters.aws.dynamodb.retention import PartitionReaper
    from durable_lambda.ports import Ports
    from durable_lambda.scheduler import Scheduler
    from durable_lambda.worker import Worker

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

#: Errors of the message itself (undecodable, unknown run or task): no wait cures
#: them, so they come back within seconds and reach the DLQ for a person to see.
POISON_ERRORS: tuple[type[BaseException], ...] = (
    PoisonMessageError,
    RunNotFoundError,
    UnknownTaskError,
)
#: The first redelivery delay after any other error (a store or queue outage,
#: throttling); each later receive doubles it. With the template's 5 receives a
#: message is received last 30 + 60 + 120 + 240 = 450 s after its first failure,
#: so an outage shorter than 7.5 minutes dead-letters no current message.
BACKOFF_FIRST_SECONDS = 30
#: The longest redelivery delay.
BACKOFF_MAX_SECONDS = 900


def redelivery_delay(error: BaseException, receives: int) -> int:
    """Seconds a failed message stays invisible after its ``receives``-th delivery.

    A bounded outage must cost time, not runs: exponential backoff spreads a
    message's receives over minutes so an outage shorter than that never sends a
    current message to the DLQ (where the scheduler would fail its run).
    """
    receives = max(1, receives)
    if isinstance(error, POISON_ERRORS):
        return min(BACKOFF_MAX_SECONDS, 5 * receives)
    doubled: int = BACKOFF_FIRST_SECONDS * 2 ** min(receives - 1, 16)
    return min(BACKOFF_MAX_SECONDS, doubled)


@dataclass(slots=True)
class _App:
    settings: Settings
    ports: AwsPorts
    worker: Worker
    scheduler: Scheduler


_app: _App | None = None
_reaper: PartitionReaper | None = None


def _build(settings: Settings | None = None) -> _App:
    """Build (once per process) the ports and services from settings."""
    global _app  # noqa: PLW0603 - one app per Lambda execution environment, reused warm
    if _app is not None and settings is None:
        return _app
    settings, ports, services = cold_start(settings)
    _app = _App(settings, ports, services.worker, services.scheduler)
    return _app


def cold_start(settings: Settings | None = None) -> tuple[Settings, AwsPorts, Services]:
    """What every function does once per execution environment: settings, tasks, ports, catalog.

    The worker, the scheduler and the API build themselves from this.
    """
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415 - boto3 at cold start only

    settings = settings or Settings.from_env()
    for module in settings.task_modules:
        importlib.import_module(module)
    ports = aws_ports(settings)
    services = build_services(ports, default_registry, settings)
    publish_catalog(ports)
    return settings, ports, services


def publish_catalog(ports: Ports) -> list[str]:
    """Write this deploy's task descriptions to the catalog (an unchanged start writes none).

    The catalog only serves triggers by id from elsewhere: a failure to write
    it is logged and does not stop this function from running its runs.
    """
    if ports.catalog is None:
        return []
    try:
        written = catalog.publish(default_registry, ports.catalog)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.warning("task catalog not published", extra={"error": type(exc).__name__})
        return []
    if written:
        logger.info("task catalog published", extra={"tasks": written})
    return written


def warm() -> None:
    """Build the app during Lambda's init phase, outside the first invocation's timeout."""
    _build()


def reset() -> None:
    """Forget the cached app and reaper (tests that change settings between handlers)."""
    global _app, _reaper  # noqa: PLW0603
    _app = _reaper = None


def worker_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS-triggered worker: each record is one resume message; failures are reported per item."""
    app = _build()
    invocation = Invocation(
        request_id=str(getattr(context, "aws_request_id", "local")),
        remaining=lambda: float(context.get_remaining_time_in_millis()) / 1000.0,
        timeout=app.settings.function_timeout,
    )

    def record_handler(record: SQSRecord) -> None:
        logger.remove_keys(["run_id"])  # the previous record's
        try:
            message = decode_message(record.body)
            logger.append_keys(run_id=message.run_id)  # on every line while it is handled
            report = app.worker.handle(message, invocation)
        except Exception as exc:
            logger.warning(
                "resume message failed",
                extra={"message_id": record.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            # Come back after a backoff rather than the queue's long visibility timeout.
            receives = int(record.attributes.approximate_receive_count or 1)
            app.ports.queue.retry_later(record.receipt_handle, redelivery_delay(exc, receives))
            raise
        logger.info(
            "resume message processed",
            extra={
                "run_id": report.run_id,
                "action": report.action,
                "status": report.status.value if report.status else None,
                "steps_executed": report.steps_executed,
                "steps_replayed": report.steps_replayed,
                "task_id": report.task_id,
                "hops": report.hops,
                "error_type": report.error_type,
                "detail": report.detail,  # epochs, wake times, reasons: never user data
            },
        )

    processor = BatchProcessor(event_type=EventType.SQS)
    metrics = run_metrics()
    step_lines()
    run_traces()
    logger.append_keys(invocation=invocation.request_id)
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        logger.remove_keys(["run_id", "invocation"])
        metrics.flush()  # one EMF line per task, however many steps ran
    return dict(response)


def scheduler_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:  # noqa: ARG001
    """EventBridge-triggered scheduler tick."""
    app = _build()
    metrics = run_metrics()  # overdue runs and dead letters, for the stuck-runs alarm
    try:
        report = app.scheduler.tick()
    finally:
        metrics.flush()
    logger.info("scheduler tick", extra=dataclasses.asdict(report))
    return dataclasses.asdict(report)


def reaper_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Table-stream-triggered: delete the rest of each run whose META item TTL removed.

    Needs no task module: it is built from the table name alone. A record that
    fails (throttled deletes) is reported and retried alone.
    """
    from durable_lambda.adapters.aws.dynamodb.retention import (  # noqa: PLC0415 - boto3
        PartitionReaper,
        RunStillPresentError,
        expired_run,
    )

    global _reaper  # noqa: PLW0603 - one client per execution environment, reused warm
    if _reaper is None:
        from durable_lambda.adapters.aws.ports import reaper_client  # noqa: PLC0415

        _reaper = PartitionReaper(reaper_client(), Settings.from_env().table_name)
    reaper = _reaper

    def record_handler(record: DynamoDBRecord) -> None:
        run_id = expired_run(record.raw_event)
        if run_id is None:
            return  # not an expiry (the mapping's filter lets none through on AWS)
        try:
            deleted = reaper.reap(run_id)
        except RunStillPresentError:
            # Not an expiry after all; retrying would not make it one.
            logger.warning("reaper skipped a run that still exists", extra={"run_id": run_id})
            return
        logger.info("expired run reaped", extra={"run_id": run_id, "items_deleted": deleted})

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
