"""What a CLI command talks to: table, bucket and queue, through which endpoints, with which tasks.

Every value follows the library's rule (explicit flag > environment > default):
table, bucket and queue URL from ``--table``/``--bucket``/``--queue-url`` or
``DL_TABLE_NAME``/``DL_BUCKET_NAME``/``DL_RESUME_QUEUE_URL``; endpoints from
``--endpoint-url`` or ``AWS_ENDPOINT_URL[_<SERVICE>]`` (see
``durable_lambda.local.endpoints``); task modules from ``--tasks-module`` or
``DL_TASK_MODULES``. With no endpoint anywhere, the commands talk to AWS.

``--stack NAME`` reads a deployed stack's CloudFormation outputs (the keys of
template.yaml's ``Outputs``): they fill table, bucket, resume queue, API URL and
function names between the flags and the environment. ``--api-url URL`` (or
``--via-api`` with ``--stack``) sends a command through the stack's HTTP API,
SigV4-signed by :class:`~durable_lambda.api_client.ApiClient`, instead of the table.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from durable_lambda.errors import DurableLambdaError
from durable_lambda.services import Services, build_services
from durable_lambda.settings import ENV_RESUME_QUEUE, ENV_TASK_MODULES, Settings
from durable_lambda.task import TaskRegistry, default_registry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from durable_lambda.api_client import ApiClient
    from durable_lambda.local.endpoints import Endpoints, RoutedSession

#: The region against a local endpoint when none is configured (moto and LocalStack take any).
LOCAL_REGION = "us-east-1"

#: The stack outputs a command reads (template.yaml's ``Outputs``).
OUTPUT_TABLE = "RunsTableName"
OUTPUT_BUCKET = "BlobBucketName"
OUTPUT_QUEUE = "ResumeQueueUrl"
OUTPUT_API = "ApiUrl"
OUTPUT_WORKER = "WorkerFunctionName"
OUTPUT_SCHEDULER = "SchedulerFunctionName"


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
        stack: A deployed stack whose outputs fill what the flags leave out.
        api_url: The HTTP API to go through instead of the table (``None``: the table).
        via_api: Take ``api_url`` from the stack's ``ApiUrl`` output.
        outputs: The stack's outputs, read once when the target is made.
    """

    endpoint_url: str | None = None
    region: str | None = None
    table: str | None = None
    bucket: str | None = None
    queue_url: str | None = None
    task_modules: tuple[str, ...] | None = None
    stack: str | None = None
    api_url: str | None = None
    via_api: bool = False
    outputs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Fill table, bucket, queue and API URL from the stack's outputs (flags win).

        Raises:
            CliError: ``--via-api`` without a stack, or a stack without an ``ApiUrl``.
        """
        if self.stack:
            outputs = stack_outputs(self.session(), self.stack)
            fill = {
                "table": outputs.get(OUTPUT_TABLE),
                "bucket": outputs.get(OUTPUT_BUCKET),
                "queue_url": outputs.get(OUTPUT_QUEUE),
            }
            for name, value in fill.items():
                if getattr(self, name) is None and value:
                    object.__setattr__(self, name, value)  # frozen: set once, while made
            object.__setattr__(self, "outputs", outputs)
            if self.via_api and self.api_url is None:
                object.__setattr__(self, "api_url", self.output(OUTPUT_API))
        elif self.via_api and self.api_url is None:
            raise CliError("--via-api takes the API URL from --stack NAME; pass one (or --api-url)")

    def output(self, key: str) -> str:
        """The stack's output ``key``.

        Raises:
            CliError: No ``--stack`` was given, or the stack has no such output.
        """
        if not self.stack:
            raise CliError(f"no stack to read the {key} output from: pass --stack NAME")
        value = self.outputs.get(key)
        if not value:
            known = ", ".join(sorted(self.outputs)) or "none"
            raise CliError(f"stack {self.stack!r} has no output {key!r} (its outputs: {known})")
        return value

    def api(self) -> ApiClient | None:
        """The signed client of the HTTP API when the target goes through it, else ``None``."""
        if not self.api_url:
            return None
        from durable_lambda.api_client import ApiClient  # noqa: PLC0415 - boto3 when used

        return ApiClient(self.api_url, session=self.session(), region=self.region)

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


def stack_outputs(session: Any, stack: str) -> dict[str, str]:
    """The outputs of CloudFormation stack ``stack``, by key.

    Raises:
        CliError: No such stack (named), or it is not in one state.
    """
    from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 only when used

    try:
        found = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise CliError(f"no CloudFormation stack {stack!r} in this account and region") from exc
        raise
    if len(found) != 1:
        raise CliError(f"stack name {stack!r} matches {len(found)} stacks, not one")
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}


def no_tasks_hint() -> str:
    """What to say when a command needs tasks and none were loaded."""
    return f"pass --tasks-module MODULE (or set {ENV_TASK_MODULES}) so the CLI knows your tasks"
