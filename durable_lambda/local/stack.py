"""The whole deployment on this machine: moto for AWS, subprocess Lambdas, SQS pollers, a ticker.

``EmulatedStack`` (not to be confused with LocalStack, which it does not need)
wires together what ``template.yaml`` deploys: the table, bucket, resume queue
and DLQ (with its redrive policy) on a moto server; the worker function behind
an SQS event source mapping; the scheduler function on a schedule.

Each service's endpoint is resolved once (``durable_lambda.local.endpoints``:
an explicit ``endpoints=`` or ``localstack=`` argument, then
``AWS_ENDPOINT_URL_<SERVICE>``, then ``AWS_ENDPOINT_URL``, then the embedded
moto server) and the same answer reaches this process's clients and every
function process's environment: SQS and S3 on LocalStack with DynamoDB on
moto is one variable per service away.
"""

from __future__ import annotations

import importlib
import math
import secrets
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from durable_lambda import settings as dl_settings
from durable_lambda.client import Client, RunHandle
from durable_lambda.local.endpoints import Endpoints, localstack_endpoints, resolve_endpoints
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.process_pool import Chaos, FunctionConfig, FunctionPool
from durable_lambda.local.scheduler_ticker import SchedulerTicker
from durable_lambda.local.sqs_poller import SqsPoller
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from durable_lambda.engine.records import RunRecord
    from durable_lambda.local.endpoint_session import EndpointSession

WORKER_HANDLER = "functions.worker.app.handler"
SCHEDULER_HANDLER = "functions.scheduler.app.handler"
#: SQS's longest visibility timeout (12 hours).
MAX_VISIBILITY_TIMEOUT = 43_200


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``DL_*`` environment variables from which ``Settings.from_env`` rebuilds ``settings``."""
    s = dl_settings
    values: dict[str, Any] = {
        s.ENV_TABLE: settings.table_name,
        s.ENV_BUCKET: settings.bucket_name,
        s.ENV_RESUME_QUEUE: settings.resume_queue_url,
        s.ENV_DLQ: settings.dlq_url,
        s.ENV_INLINE_LIMIT: settings.inline_limit,
        s.ENV_MAX_VALUE: settings.max_value_bytes,
        s.ENV_SHORT_WAIT: settings.short_wait_seconds,
        s.ENV_MARGIN_MIN: settings.safety_margin_seconds,
        s.ENV_MARGIN_FRACTION: settings.safety_margin_fraction,
        s.ENV_MAX_HOPS: settings.max_hops,
        s.ENV_RETENTION_DAYS: settings.retention_days,
        s.ENV_TASK_MODULES: ",".join(settings.task_modules),
        s.ENV_FUNCTION_TIMEOUT: settings.function_timeout,
        s.ENV_STRANDED_AFTER: settings.stranded_after_seconds,
        # Tokens the worker creates carry url and callback_url under it.
        s.ENV_API_BASE_URL: settings.api_base_url,
        # One key for every function process: a token's callback URL, derived
        # again on replay in another environment, must stay the same.
        s.ENV_CALLBACK_KEY: settings.callback_key,
    }
    return {
        name: repr(value) if isinstance(value, float) else str(value)
        for name, value in values.items()
    }


class EmulatedStack:
    """The durable-lambda stack on a local moto server, with emulated Lambda functions.

    Example::

        with EmulatedStack(task_modules=["functions.tasks.orders"], timeout=30) as stack:
            handle = stack.trigger("process-order", {"order_id": "o-1"})
            run = stack.wait_for(handle.run_id, timeout=60)

    Counters: ``stack.worker.stats`` (cold/warm starts, kills), ``stack.poller.stats``
    (messages, deleted, failed), ``stack.ticker.stats``.

    Args:
        settings: Base settings; queue URLs, ``task_modules`` and
            ``function_timeout`` are filled in by :meth:`start`.
        task_modules: Modules defining the tasks; imported by the worker and
            by this process (so :meth:`trigger` can validate payloads).
        timeout: The worker's function timeout, seconds.
        scheduler_timeout: The scheduler's function timeout, seconds (the
            template's 60 by default: a short worker timeout chosen to make
            chaining visible must not kill the scheduler's ticks on a busy machine).
        reserved_concurrency: The worker's reserved concurrency, also its
            number of SQS pollers.
        max_receive_count: Receives before SQS moves a message to the DLQ.
        visibility_timeout: The resume queue's visibility timeout in seconds
            (default: 6 x ``timeout``, as AWS recommends for event sources).
        scheduler_interval: Seconds between scheduler ticks.
        batch_size: Messages per worker invocation.
        chaos: Kill worker environments at random moments.
        log_dir: Where ``worker.log`` and ``scheduler.log`` go (default: a temp dir).
        inherit_stderr: Send the functions' output to this process's stderr instead.
        pythonpath: Extra import paths for the functions (e.g. where task modules live).
        env: Extra environment variables for the functions.
        worker_handler: The worker's ``Handler``.
        scheduler_handler: The scheduler's ``Handler``.
        endpoints: Per service (``"sqs"``, ``"s3"``, ``"logs"``, ``"dynamodb"``),
            an endpoint that beats the environment and the embedded server.
        localstack: Put SQS, S3 and Logs on LocalStack (``True``: where
            ``localstack-client`` says, ``LOCALSTACK_HOST`` or ``localhost:4566``;
            a ``host:port`` string: there). ``endpoints`` still wins per service.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        task_modules: Sequence[str] = (),
        timeout: float = 30.0,
        scheduler_timeout: float = 60.0,
        reserved_concurrency: int = 2,
        max_receive_count: int = 3,
        visibility_timeout: int | None = None,
        scheduler_interval: float = 60.0,
        batch_size: int = 10,
        chaos: Chaos | None = None,
        log_dir: Path | None = None,
        inherit_stderr: bool = False,
        pythonpath: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        worker_handler: str = WORKER_HANDLER,
        scheduler_handler: str = SCHEDULER_HANDLER,
        endpoints: Mapping[str, str] | None = None,
        localstack: bool | str = False,
    ) -> None:
        # moto's state is process-wide: unique names keep two stacks in one
        # process (tests, a dev server beside them) from sharing resources.
        suffix = uuid.uuid4().hex[:8]
        base = settings or Settings(
            table_name=f"durable-lambda-{suffix}", bucket_name=f"durable-lambda-{suffix}"
        )
        self.settings = base.with_(
            task_modules=tuple(task_modules) or base.task_modules,
            function_timeout=timeout,
            # Every function process derives the same callback secrets (Settings.callback_key).
            callback_key=base.callback_key or secrets.token_hex(32),
        )
        self.timeout = timeout
        self.scheduler_timeout = scheduler_timeout
        self.reserved_concurrency = reserved_concurrency
        self.max_receive_count = max_receive_count
        self.visibility_timeout = visibility_timeout or min(
            MAX_VISIBILITY_TIMEOUT, max(1, math.ceil(6 * timeout))
        )
        self.scheduler_interval = scheduler_interval
        self.batch_size = batch_size
        self.chaos = chaos
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="durable-lambda-stack-"))
        self.inherit_stderr = inherit_stderr
        self.pythonpath = tuple(pythonpath)
        self.extra_env = dict(env or {})
        self.worker_handler = worker_handler
        self.scheduler_handler = scheduler_handler
        self.moto = MotoServer()
        self.endpoint_overrides = dict(endpoints or {})
        self.localstack = localstack
        self._endpoints: Endpoints | None = None
        self._started = False
        self._session: EndpointSession | None = None
        self._client: Client | None = None
        self.worker: FunctionPool | None = None
        self.scheduler: FunctionPool | None = None
        self.poller: SqsPoller | None = None
        self.ticker: SchedulerTicker | None = None

    @property
    def client(self) -> Client:
        """A client on the stack (valid once started)."""
        if self._client is None:
            raise RuntimeError("the stack is not running; call start() first")
        return self._client

    @property
    def session(self) -> EndpointSession:
        """A boto3 session on the stack's moto server (valid once started)."""
        if self._session is None:
            raise RuntimeError("the stack is not running; call start() first")
        return self._session

    def start(self) -> Self:
        """Start moto, create the resources, start the functions, pollers and ticker."""
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def endpoints(self) -> Endpoints:
        """Where each service is (valid once started)."""
        if self._endpoints is None:
            raise RuntimeError("the stack is not running; call start() first")
        return self._endpoints

    def env(self) -> dict[str, str]:
        """The functions' environment: endpoints per service, credentials, ``DL_*`` settings."""
        return {
            **self.moto.env(),
            **self.endpoints.env(),
            **settings_env(self.settings),
            **self.extra_env,
        }

    def trigger(self, task: Any, payload: Any, **options: Any) -> RunHandle:
        """Trigger a run (``Client.trigger`` options apply)."""
        return self.client.trigger(task, payload, **options)

    def wait_for(self, run_id: str, timeout: float = 30.0, poll: float = 0.1) -> RunRecord:
        """The run once it has reached a terminal status.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds (names its status).
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.client.get_run(run_id)
            if run.status.is_terminal:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"run {run_id} still {run.status.value} after {timeout:g} s "
                    f"(worker log: {self.log_dir / 'worker.log'})"
                )
            time.sleep(poll)

    def stop(self) -> None:
        """Stop everything (idempotent); running invocations are killed."""
        for component in (self.poller, self.ticker):
            if component is not None:
                component.signal_stop()
        for pool in (self.worker, self.scheduler):
            if pool is not None:
                pool.close()
        for component in (self.poller, self.ticker):
            if component is not None:
                component.stop(timeout=5.0)
        self.moto.stop()
        self.poller = self.ticker = self.worker = self.scheduler = None
        self._client = self._session = self._endpoints = None
        self._started = False

    def _start(self) -> None:
        from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
        from durable_lambda.local.endpoint_session import EndpointSession  # noqa: PLC0415
        from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

        self.moto.start()
        endpoints = resolve_endpoints(
            per_service=self._explicit_endpoints(), fallback=self.moto.endpoint_url
        )
        self._endpoints = endpoints
        default = endpoints.default or self.moto.endpoint_url
        session = EndpointSession(default, self.moto.region, services=endpoints.urls)
        self._session = session
        sqs: SQSClient = session.client("sqs")
        resume_url, dlq_url = self._create_queues(sqs)
        self.settings = ensure_resources(
            self.settings.with_(resume_queue_url=resume_url, dlq_url=dlq_url), session
        )
        for module in self.settings.task_modules:
            importlib.import_module(module)
        ports = aws_ports(self.settings, session)
        self._client = build_services(ports, default_registry, self.settings).client
        self.worker = FunctionPool(self._function(self.worker_handler, "worker", self.chaos))
        self.scheduler = FunctionPool(self._function(self.scheduler_handler, "scheduler", None))
        self.poller = SqsPoller(
            self.worker, sqs, resume_url, batch_size=self.batch_size, wait_time_seconds=1
        )
        self.ticker = SchedulerTicker(self.scheduler, self.scheduler_interval)
        self.poller.start()
        self.ticker.start()

    def _explicit_endpoints(self) -> dict[str, str]:
        """Endpoints given as arguments: LocalStack's services, then ``endpoints`` over them."""
        found: dict[str, str] = {}
        if self.localstack:
            host = self.localstack if isinstance(self.localstack, str) else None
            found.update(localstack_endpoints(host=host))
        found.update(self.endpoint_overrides)
        return found

    def _create_queues(self, sqs: SQSClient) -> tuple[str, str]:
        name = self.settings.table_name
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = (
            f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{self.max_receive_count}"}}'
        )
        resume_url = sqs.create_queue(
            QueueName=f"{name}-resume",
            Attributes={
                "RedrivePolicy": redrive,
                "VisibilityTimeout": str(self.visibility_timeout),
            },
        )["QueueUrl"]
        return resume_url, dlq_url

    def _function(self, handler: str, role: str, chaos: Chaos | None) -> FunctionConfig:
        return FunctionConfig(
            handler=handler,
            name=f"{self.settings.table_name}-{role}",
            timeout=self.timeout if role == "worker" else self.scheduler_timeout,
            reserved_concurrency=self.reserved_concurrency if role == "worker" else 1,
            env=self.env(),
            pythonpath=self.pythonpath,
            log_path=None if self.inherit_stderr else self.log_dir / f"{role}.log",
            inherit_stderr=self.inherit_stderr,
            chaos=chaos,
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
