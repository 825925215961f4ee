"""The resume queue and its dead-letter queue on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from durable_lambda.engine.records import ResumeMessage
from durable_lambda.engine.resume import MAX_DELAY_SECONDS
from durable_lambda.errors import ConfigurationError
from durable_lambda.messages import encode_message

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SQS's limits: the longest DelaySeconds, visibility timeout and batch.
MAX_VISIBILITY_SECONDS = 12 * 60 * 60
MAX_RECEIVE = 10
MAX_SEND_BATCH = 10


def _require(url: str, what: str) -> str:
    if not url:
        raise ConfigurationError(f"no {what} URL configured (DL_RESUME_QUEUE_URL / DL_DLQ_URL)")
    return url


class SQSResumeQueue:
    """:class:`~durable_lambda.ports.ResumeQueue` on SQS.

    Args:
        client: A boto3 SQS client.
        queue_url: The resume queue.
    """

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        """Wire the queue."""
        self.client = client
        self.queue_url = queue_url

    def send(self, message: ResumeMessage, delay_seconds: int = 0) -> None:
        """Send ``{"run_id", "epoch"}``, delivered after ``delay_seconds`` (0..900).

        Raises:
            ConfigurationError: The delay is outside SQS's range.
        """
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
            raise ConfigurationError(
                f"delay_seconds must be 0..{MAX_DELAY_SECONDS}, got {delay_seconds}"
            )
        self.client.send_message(
            QueueUrl=_require(self.queue_url, "resume queue"),
            MessageBody=encode_message(message),
            DelaySeconds=int(delay_seconds),
        )

    def send_batch(self, messages: Sequence[ResumeMessage], delay_seconds: int = 0) -> None:
        """Send ``messages`` in SendMessageBatch requests of 10; failed entries are sent alone.

        Raises:
            ConfigurationError: The delay is outside SQS's range.
        """
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
            raise ConfigurationError(
                f"delay_seconds must be 0..{MAX_DELAY_SECONDS}, got {delay_seconds}"
            )
        url = _require(self.queue_url, "resume queue")
        for start in range(0, len(messages), MAX_SEND_BATCH):
            chunk = messages[start : start + MAX_SEND_BATCH]
            response = self.client.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": encode_message(message),
                        "DelaySeconds": int(delay_seconds),
                    }
                    for i, message in enumerate(chunk)
                ],
            )
            for failed in response.get("Failed", []):
                self.send(chunk[int(failed["Id"])], delay_seconds)  # throttled: retried alone

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds`` (a failed delivery)."""
        seconds = max(0, min(int(seconds), MAX_VISIBILITY_SECONDS))
        self.client.change_message_visibility(
            QueueUrl=_require(self.queue_url, "resume queue"),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )


@dataclass(frozen=True, slots=True)
class SQSDeadLetter:
    """A message read from the dead-letter queue.

    Attributes:
        body: The raw body, as sent.
        receipt_handle: Handle to delete it with.
        receive_count: SQS's ApproximateReceiveCount (deliveries so far).
        message_id: SQS's id of the message.
    """

    body: str
    receipt_handle: str
    receive_count: int
    message_id: str


class SQSDeadLetters:
    """:class:`~durable_lambda.ports.DeadLetters` on SQS.

    Args:
        client: A boto3 SQS client.
        queue_url: The dead-letter queue.
        visibility_seconds: How long a read letter stays hidden before another read.
    """

    def __init__(self, client: SQSClient, queue_url: str, visibility_seconds: int = 60) -> None:
        """Wire the queue."""
        self.client = client
        self.queue_url = queue_url
        self.visibility_seconds = visibility_seconds

    def receive(self, max_messages: int = MAX_RECEIVE) -> Sequence[SQSDeadLetter]:
        """Up to ``max_messages`` (at most 10) letters, without waiting."""
        response = self.client.receive_message(
            QueueUrl=_require(self.queue_url, "dead-letter queue"),
            MaxNumberOfMessages=max(1, min(max_messages, MAX_RECEIVE)),
            WaitTimeSeconds=0,
            VisibilityTimeout=self.visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [
            SQSDeadLetter(
                body=message.get("Body", ""),
                receipt_handle=message.get("ReceiptHandle", ""),
                receive_count=int(
                    message.get("Attributes", {}).get("ApproximateReceiveCount", "0")
                ),
                message_id=message.get("MessageId", ""),
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, receipt_handle: str) -> None:
        """Remove a handled letter."""
        self.client.delete_message(
            QueueUrl=_require(self.queue_url, "dead-letter queue"), ReceiptHandle=receipt_handle
        )
