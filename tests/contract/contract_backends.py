"""The backends of the contract suite: the memory reference and DynamoDB/S3/SQS on moto."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from faults import FaultInjector, no_backoff

from durable_lambda.adapters.memory import MemoryBlobStore, MemoryRunStore
from durable_lambda.engine.records import RunRecord, TimelineEvent
from durable_lambda.engine.state import RunStatus
from durable_lambda.ports import RateStore, RunStore, ScheduleStore, SlotStore, TokenStore
from durable_lambda.settings import Settings
from durable_lambda.testing.aws_counter import RequestCounter
from durable_lambda.values import ValueStore

BACKENDS = ("memory", "moto")
ENV_BACKENDS = "DL_TEST_BACKENDS"

SETTINGS = Settings(
    table_name="dl-contract",
    bucket_name="dl-contract-values",
    inline_limit=64 * 1024,
    max_value_bytes=1024 * 1024,
)

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """``T0`` plus ``seconds``."""
    return T0 + dt.timedelta(seconds=seconds)


def selected_backends() -> list[str]:
    raw = os.environ.get(ENV_BACKENDS, "")
    wanted = [name.strip() for name in raw.split(",") if name.strip()] or list(BACKENDS)
    unknown = sorted(set(wanted) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(f"{ENV_BACKENDS}: unknown backends {unknown}; use {BACKENDS}")
    return wanted


class FlowStore(SlotStore, RateStore, ScheduleStore, Protocol):
    """Slots, rate windows and cron cursors: one object on each backend."""


@dataclass
class Backend:
    """A run store under test, with the probes the contract needs."""

    name: str
    store: RunStore
    settings: Settings
    blob_count: Callable[[], int]
    #: A second store on the same data, as another process would have.
    other_store: Callable[[], RunStore]
    counter: RequestCounter | None = None
    #: The flow store (slots, rate windows, cron cursors) on the same data.
    flow: FlowStore | None = None
    #: Faults injected into the AWS clients (``None`` on memory, which has no wire).
    faults: FaultInjector | None = None
    #: Wait tokens on the same data.
    tokens: TokenStore | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _ids: int = 0

    def new_run(self, events: Sequence[TimelineEvent] = (), **changes: Any) -> RunRecord:
        """Create a QUEUED run (fields overridable), with ``events`` folded in, and return it."""
        self._ids += 1
        fields: dict[str, Any] = {
            "run_id": f"run_{self._ids:04d}",
            "task_id": "orders",
            "status": RunStatus.QUEUED,
            "payload": '{"order":1}',
            "created_at": at(self._ids),
            "updated_at": at(self._ids),
            "queue": "default",
        }
        fields.update(changes)
        run = RunRecord(**fields)
        return self.store.create_run(run, events=events)


def memory_backend() -> Iterator[Backend]:
    blobs = MemoryBlobStore()
    values = ValueStore(blobs, SETTINGS.inline_limit, SETTINGS.max_value_bytes)
    store = MemoryRunStore(values)
    yield Backend(
        name="memory",
        store=store,
        settings=SETTINGS,
        blob_count=lambda: len(blobs.blobs),
        other_store=lambda: store,
        flow=store.flow,
        tokens=store.tokens,
    )


def moto_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        settings = ensure_resources(SETTINGS, session)
        ports = aws_ports(settings, session)
        s3 = session.client("s3")

        def blob_count() -> int:
            return int(s3.list_objects_v2(Bucket=settings.bucket_name).get("KeyCount", 0))

        no_backoff(monkeypatch)
        yield Backend(
            name="moto",
            store=ports.store,
            settings=settings,
            blob_count=blob_count,
            other_store=lambda: aws_ports(settings, session).store,
            counter=RequestCounter().attach(ports.store.client),
            flow=ports.flow,
            faults=FaultInjector().attach(ports.store.client, ports.blobs.client),
            tokens=ports.tokens,
            extra={"session": session, "ports": ports},
        )
