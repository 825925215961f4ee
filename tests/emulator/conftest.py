"""Fixtures for the emulator's own tests: pools on the tiny handlers of ``emu_handlers``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_lambda.local.process_pool import FunctionConfig, FunctionPool

HERE = Path(__file__).parent


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[Any]:
    """``make_pool("echo", timeout=..)``: a pool on ``emu_handlers.echo`` (or a dotted path)."""
    pools: list[FunctionPool] = []

    def make(handler: str, **options: Any) -> FunctionPool:
        options.setdefault("timeout", 5.0)
        options.setdefault("log_path", tmp_path / "function.log")
        env = {"EMU_TEST_DIR": str(tmp_path), **options.pop("env", {})}
        config = FunctionConfig(
            handler=handler if "." in handler else f"emu_handlers.{handler}",
            pythonpath=[str(HERE)],
            env=env,
            **options,
        )
        pool = FunctionPool(config)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
