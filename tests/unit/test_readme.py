"""The README's Python examples run as written.

Blocks fenced as ```python run, in order, in one namespace (later examples use
the tasks of earlier ones); blocks fenced as ```python fragment only parse.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_lambda.task import TaskRegistry

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    info: str
    source: str  # padded with blank lines so tracebacks show README line numbers


def _python_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(match.group(1).strip(), "\n" * text.count("\n", 0, match.start(2)) + match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1).split(" ", 1)[0].strip() == "python"
    ]


def _runnable() -> list[Block]:
    return [block for block in _python_blocks() if block.info == "python"]


def _run(block: Block, namespace: dict[str, Any]) -> None:
    exec(compile(block.source, str(README), "exec"), namespace)  # noqa: S102 - our own README


@pytest.fixture
def fresh_default_registry(monkeypatch: pytest.MonkeyPatch) -> TaskRegistry:
    # The README's tasks register in the process-wide registry, where the
    # sample tasks of functions/ may already hold the same ids. (The package
    # re-exports the decorator as ``task``, hiding the module of that name.)
    registry = TaskRegistry()
    for module in ("durable_lambda.task", "durable_lambda.testing.runner"):
        monkeypatch.setattr(importlib.import_module(module), "default_registry", registry)
    return registry


def test_every_python_block_runs_or_is_a_fragment_that_parses():
    for block in _python_blocks():
        assert block.info in {"python", "python fragment"}, block.info
        ast.parse(block.source)


def test_the_first_example_defines_a_task_whose_step_returns_its_annotation(
    fresh_default_registry,
):
    namespace: dict[str, Any] = {"__name__": "readme"}
    _run(_runnable()[0], namespace)
    assert fresh_default_registry.ids() == ["process-order"]
    receipt = namespace["charge_card"]("o-1", 100, "key-1")  # outside a task: a plain call
    assert isinstance(receipt, dict)


def test_the_runnable_examples_run_and_their_tests_pass(fresh_default_registry):
    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in _runnable():
        _run(block, namespace)
    tests = {name: value for name, value in namespace.items() if name.startswith("test_")}
    assert "test_order_completes" in tests  # the LocalRunner example of "Testing your tasks"
    assert "test_album_children" in tests  # the example of "Child tasks"
    assert "test_review_waits_for_a_person" in tests  # the example of "wait tokens"
    for test in tests.values():
        test()


def test_the_parallel_example_maps_pages_and_checks_out(fresh_default_registry):
    from durable_lambda.testing import LocalRunner  # noqa: PLC0415

    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in _runnable():
        _run(block, namespace)
    runner = LocalRunner()
    result = runner.run(namespace["summarise_document"], {"pages": 3, "order_id": "o-9"})
    assert result.output == {
        "summaries": ["summary of page 1", "summary of page 2", "summary of page 3"],
        "order": {"order_id": "o-9", "total": 4200},
    }
