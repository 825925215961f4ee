"""The fixtures every system suite shares, registered once through ``pytest_plugins``.

A suite says which task modules its stacks and in-process services run by
overriding ``stack_tasks`` in its own conftest.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from in_process import InProcess
from ledger import LEDGER_ENV
from registries import registry_of

from durable_lambda.adapters.aws import aws_ports
from durable_lambda.local.endpoint_session import EndpointSession
from durable_lambda.local.moto_server import MotoServer
from durable_lambda.local.resources import ensure_resources
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.testing import SkipClock

SUPPORT = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class StackTasks:
    """The task modules a suite's workers import, and the folder they live in."""

    modules: tuple[str, ...]
    folder: Path


@pytest.fixture
def stack_tasks() -> StackTasks:
    """Overridden by each system suite's conftest."""
    pytest.fail("this suite's conftest must define the stack_tasks fixture")


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The ledger file the step bodies append to."""
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def make_stack(
    tmp_path: Path, ledger: Path, stack_tasks: StackTasks
) -> Iterator[Callable[..., EmulatedStack]]:
    """``make_stack(settings, timeout=.., ...)``: a started stack running the suite's tasks.

    Every stack is stopped at the end of the test, whatever happened. Each gets a
    table, bucket and queues of its own: moto servers started in one process share
    their state, so a name used by an earlier stack would bring its leftovers along.
    """
    stacks: list[EmulatedStack] = []

    def make(
        settings: Settings | None = None,
        *,
        task_modules: tuple[str, ...] | None = None,
        **options: Any,
    ) -> EmulatedStack:
        options.setdefault("log_dir", tmp_path / f"stack-{len(stacks)}")
        name = f"dl-sys-{uuid.uuid4().hex[:8]}"
        stack = EmulatedStack(
            (settings or Settings()).with_(table_name=name, bucket_name=name),
            task_modules=list(task_modules or stack_tasks.modules),
            pythonpath=[str(stack_tasks.folder), str(SUPPORT)],
            env={LEDGER_ENV: str(ledger)},
            **options,
        )
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    """One moto server per test module (each test makes resources of its own on it)."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def in_process(
    moto_server: MotoServer, ledger: Path, stack_tasks: StackTasks, monkeypatch: pytest.MonkeyPatch
) -> InProcess:
    """The suite's tasks on services in this process, on fresh resources of the moto server."""
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    session = EndpointSession(moto_server.endpoint_url, moto_server.region)
    name = f"dl-sys-{uuid.uuid4().hex[:8]}"
    settings = ensure_resources(
        Settings(table_name=name, bucket_name=name, short_wait_seconds=0, function_timeout=30),
        session,
    )
    ports = aws_ports(settings, session)
    clock = SkipClock()
    services = build_services(
        dataclasses.replace(ports, clock=clock), registry_of(*stack_tasks.modules), settings
    )
    return InProcess(
        ports,
        settings,
        clock,
        services.admission,
        services.worker,
        services.scheduler,
        services.client,
        session.client("sqs"),
        itertools.count(),
    )
