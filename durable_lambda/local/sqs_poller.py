"""An SQS event source mapping: poller threads that receive batches and invoke a function.

As on Lambda: a batch is deleted only for the records the handler did not
report in ``batchItemFailures``; when the invocation fails or times out
nothing is deleted, so the messages come back after their visibility
timeout, and SQS moves them to the DLQ after ``maxReceiveCount`` receives.
Delays and visibility are the queue's own (moto honours both).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from durable_lambda.local.process_pool import FunctionPool, PoolClosedError
from durable_lambda.local.sqs_event import SYSTEM_ATTRIBUTES, lambda_event, records_to_delete

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

_log = logging.getLogger(__name__)

#: Pause after a failed ReceiveMessage so a stopped endpoint is not hammered.
_ERROR_BACKOFF = 0.5


@dataclass(frozen=True, slots=True)
class PollerStats:
    """Counters of an event source mapping.

    Attributes:
        batches: Non-empty batches received.
        messages: Messages received (a redelivery counts again).
        deleted: Messages deleted after their invocation.
        failed: Messages left on the queue: reported in ``batchItemFailures``
            or part of a batch whose invocation failed.
        invocation_errors: Invocations that failed or timed out.
        receive_errors: ReceiveMessage or DeleteMessageBatch calls that failed.
    """

    batches: int = 0
    messages: int = 0
    deleted: int = 0
    failed: int = 0
    invocation_errors: int = 0
    receive_errors: int = 0


class SqsPoller:
    """Lambda's SQS event source mapping for one queue and one function.

    Args:
        pool: The function to invoke.
        sqs: A boto3 SQS client (thread-safe; shared by the poller threads).
        queue_url: The queue to poll.
        batch_size: Messages per invocation, 1..10 (Lambda's ``BatchSize``).
        pollers: Poller threads, hence the most invocations at once (Lambda's
            ``ScalingConfig.MaximumConcurrency``); default: the pool's reserved concurrency.
        wait_time_seconds: Long-poll wait per ReceiveMessage. Short keeps stop() fast.
    """

    def __init__(
        self,
        pool: FunctionPool,
        sqs: SQSClient,
        queue_url: str,
        *,
        batch_size: int = 10,
        pollers: int | None = None,
        wait_time_seconds: int = 1,
    ) -> None:
        if not 1 <= batch_size <= 10:  # noqa: PLR2004 - SQS's own limit
            raise ValueError(f"batch_size must be 1..10, got {batch_size}")
        self._pool = pool
        self._sqs = sqs
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.pollers = pollers or pool.config.reserved_concurrency
        self.wait_time_seconds = wait_time_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(PollerStats.__dataclass_fields__, 0)
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = attributes["Attributes"]["QueueArn"]
        self.region = sqs.meta.region_name

    @property
    def stats(self) -> PollerStats:
        """A snapshot of the counters."""
        with self._lock:
            return PollerStats(**self._counts)

    def start(self) -> None:
        """Start the poller threads (idempotent)."""
        if self._threads:
            return
        self._stop.clear()
        for number in range(self.pollers):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def signal_stop(self) -> None:
        """Ask the threads to stop after their current receive or invocation."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait for the threads (an invocation in flight finishes first)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def poll_once(self) -> int:
        """Receive one batch, invoke the function, delete what succeeded.

        Returns:
            The number of messages received.
        """
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_seconds,
            MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        self._count(batches=1, messages=len(messages))
        event = lambda_event(messages, self.queue_arn, self.region)
        records: list[Mapping[str, Any]] = event["Records"]
        result = self._pool.invoke(event)
        if not result.ok:
            _log.warning(
                "invocation failed; %d messages stay on the queue: %s", len(records), result.error
            )
            self._count(invocation_errors=1, failed=len(records))
            return len(messages)
        done, failed = records_to_delete(records, result.result)
        self._count(failed=len(failed))
        self._delete(done)
        return len(messages)

    def _delete(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": str(record["receiptHandle"])}
            for index, record in enumerate(records)
        ]
        response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self._count(deleted=len(response.get("Successful", [])))
        if response.get("Failed"):
            self._count(receive_errors=1)
            _log.warning("DeleteMessageBatch failed for %s", response["Failed"])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except PoolClosedError:
                return
            except Exception:  # noqa: BLE001 - a poller survives endpoint hiccups, as Lambda's does
                if self._stop.is_set():
                    return
                _log.warning("SQS poll failed; retrying", exc_info=True)
                self._count(receive_errors=1)
                self._stop.wait(_ERROR_BACKOFF)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta
