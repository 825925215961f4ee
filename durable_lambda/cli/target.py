"""What a CLI command talks to: table, bucket and queue, through which endpoints, with which tasks.

Every value follows the library's rule (explicit flag > environment > default):
table, bucket and queue URL from ``--table``/``--bucket``/``--queue-url`` or
``DL_TABLE_NAME``/``DL_BUCKET_NAME``/``DL_RESUME_QUEUE_URL``; endpoints from
``--endpoint-url`` or ``AWS_ENDPOINT_URL[_<SERVICE>]`` (see
``durable_lambda.local.endpoints``); task modules from ``--tasks-module`` or
``DL_TASK_MODULES``. With no endpoint anywhere, the commands talk to AWS.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from durable_lambda.errors import DurableLambdaError
from durable_lambda.services import Services, build_services
from durable_lambda.settings import ENV_RESUME_QUEUE, ENV_TASK_MODULES, Settings
from durable_lambda.task import TaskRegistry, default_registry

if TYPE_CHECKING:
    from durable_lambda.local.endpoints import Endpoints, RoutedSession

#: The region against a local endpoint when none is configured (moto and LocalStack take any).
LOCAL_REGION = "us-east-1"


class CliError(DurableLambdaError):
    """A command cannot do what it was asked (the message names why)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The deployment a command acts on.

    Attributes:
        endpoint_url: One endpoint for every service (``None``: per-service env, else AWS).
        region: The AWS region (``None``: boto3's own resolution).
        table: The DynamoDB table (``None``: ``DL_TABLE_NAME`` or the default).
        bucket: The S3 bucket for large values.
        queue_url: The worker's resume queue (needed to trigger).
        task_modules: Modules that define the tasks (``None``: ``DL_TASK_MODULES``).
    """

    endpoint_url: str | None = None
    region: str | None = None
    table: str | None = None
    bucket: str | None = None
    queue_url: str | None = None
    task_modules: tuple[str, ...] | None = None

    def settings(self) -> Settings:
        """The runtime settings, flags over environment."""
        overrides: dict[str, Any] = {}
        if self.table:
            overrides["table_name"] = self.table
        if self.bucket:
            overrides["bucket_name"] = self.bucket
        if self.queue_url:
            overrides["resume_queue_url"] = self.queue_url
        if self.task_modules:
            overrides["task_modules"] = self.task_modules
        return Settings.from_env(**overrides)

    def endpoints(self) -> Endpoints:
        """Each service's endpoint (flag > per-service env > ``AWS_ENDPOINT_URL`` > AWS)."""
        from durable_lambda.local.endpoints import resolve_endpoints  # noqa: PLC0415 - boto3

        return resolve_endpoints(endpoint_url=self.endpoint_url)

    def session(self) -> RoutedSession:
        """A boto3 session whose clients go to :meth:`endpoints`."""
        from durable_lambda.local.endpoints import RoutedSession  # noqa: PLC0415 - boto3

        endpoints = self.endpoints()
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region is None and endpoints.urls:
            region = LOCAL_REGION
        return RoutedSession(endpoints, region_name=region)

    def services(self, registry: TaskRegistry | None = None) -> Services:
        """The client, worker and scheduler wired to the target's table, bucket and queue."""
        from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415 - boto3 only when used

        settings = self.settings()
        ports = aws_ports(settings, self.session())
        return build_services(ports, registry or default_registry, settings)

    def require_queue(self) -> str:
        """The resume queue URL.

        Raises:
            CliError: None is configured.
        """
        url = self.settings().resume_queue_url
        if not url:
            raise CliError(f"no resume queue: pass --queue-url or set {ENV_RESUME_QUEUE}")
        return url

    def load_tasks(self, registry: TaskRegistry | None = None) -> TaskRegistry:
        """Import the task modules so their ``@task``s register; the registry they went to.

        The current directory is importable first, as with ``python -m``.

        Raises:
            CliError: A module cannot be imported (named, with the reason).
        """
        modules = self.settings().task_modules
        here = str(Path.cwd())
        if here not in sys.path:
            sys.path.insert(0, here)
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise CliError(
                    f"cannot import task module {module!r}: {type(exc).__name__}: {exc}"
                ) from exc
        return registry or default_registry


def no_tasks_hint() -> str:
    """What to say when a command needs tasks and none were loaded."""
    return f"pass --tasks-module MODULE (or set {ENV_TASK_MODULES}) so the CLI knows your tasks"
