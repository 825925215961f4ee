"""Fixtures: emulated stacks running ``ledger_tasks``, and in-process workers on a moto server."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger import LEDGER_ENV
from registries import registry_of
from stack_probes import InProcess

from durable_lambda.adapters.aws import aws_ports
from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.resources import ensure_resources
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.testing import SkipClock

HERE = Path(__file__).parent
SUPPORT = HERE.parent / "support"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The ledger file the step bodies append to."""
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def make_stack(tmp_path: Path, ledger: Path) -> Iterator[Callable[..., EmulatedStack]]:
    """``make_stack(settings, timeout=.., ...)``: a started stack running ``ledger_tasks``.

    Every stack is stopped at the end of the test, whatever happened. Each gets a
    table, bucket and queues of its own: moto servers started in one process share
    their state, so a name used by an earlier stack would bring its leftovers along.
    """
    stacks: list[EmulatedStack] = []

    def make(settings: Settings | None = None, **options: Any) -> EmulatedStack:
        options.setdefault("log_dir", tmp_path / f"stack-{len(stacks)}")
        name = f"dl-rel-{uuid.uuid4().hex[:8]}"
        stack = EmulatedStack(
            (settings or Settings()).with_(table_name=name, bucket_name=name),
            task_modules=["ledger_tasks"],
            pythonpath=[str(HERE), str(SUPPORT)],
            env={LEDGER_ENV: str(ledger)},
            **options,
        )
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


# -- in-process worker and scheduler on a moto server ---------------------------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def in_process(moto_server: MotoServer, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """Fresh resources (a table and queues of their own) on the module's moto server."""
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    session = EndpointSession(moto_server.endpoint_url, moto_server.region)
    name = f"dl-rel-{uuid.uuid4().hex[:8]}"
    settings = ensure_resources(
        Settings(table_name=name, bucket_name=name, short_wait_seconds=0, function_timeout=30),
        session,
    )
    ports = aws_ports(settings, session)
    clock = SkipClock()
    services = build_services(
        dataclasses.replace(ports, clock=clock), registry_of("ledger_tasks"), settings
    )
    return InProcess(
        ports,
        settings,
        clock,
        services.worker,
        services.scheduler,
        services.client,
        session.client("sqs"),
        itertools.count(),
    )
