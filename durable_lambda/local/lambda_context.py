"""The context object a Lambda handler receives, with a real deadline."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from durable_lambda.local.moto_server import DEFAULT_REGION, MOTO_ACCOUNT_ID


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """What AWS Lambda's Python runtime passes as ``context``.

    Attributes:
        aws_request_id: The invocation's request id (a UUID).
        function_name: The function's name.
        function_version: ``$LATEST`` unless a version is emulated.
        invoked_function_arn: The ARN the caller invoked.
        memory_limit_in_mb: The configured memory.
        log_group_name: ``/aws/lambda/<function_name>``.
        log_stream_name: The execution environment's log stream.
        deadline: ``time.monotonic()`` value at which Lambda stops the invocation.
        identity: Cognito identity (always ``None`` here).
        client_context: Mobile client context (always ``None`` here).
    """

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    deadline: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @classmethod
    def create(
        cls,
        *,
        function_name: str = "local-function",
        timeout: float | None = None,
        deadline: float | None = None,
        request_id: str | None = None,
        memory_limit_in_mb: int = 128,
        log_stream_name: str | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = MOTO_ACCOUNT_ID,
    ) -> LambdaContext:
        """A context whose deadline is ``deadline`` (monotonic) or ``timeout`` seconds from now.

        Raises:
            ValueError: Neither or both of ``timeout`` and ``deadline`` given.
        """
        if (timeout is None) == (deadline is None):
            raise ValueError("give exactly one of timeout and deadline")
        if deadline is None:
            deadline = time.monotonic() + float(timeout or 0.0)
        return cls(
            aws_request_id=request_id or str(uuid.uuid4()),
            function_name=function_name,
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{region}:{account_id}:function:{function_name}",
            memory_limit_in_mb=memory_limit_in_mb,
            log_group_name=f"/aws/lambda/{function_name}",
            log_stream_name=log_stream_name or new_log_stream_name(),
            deadline=deadline,
        )


def new_log_stream_name() -> str:
    """A log stream name shaped like Lambda's: ``YYYY/MM/DD/[$LATEST]<hex>``."""
    return time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
