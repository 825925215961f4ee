"""Run mypy, with the project's own configuration, on a module a test writes."""

from __future__ import annotations

from pathlib import Path

from mypy import api

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def mypy_output(tmp_path: Path, name: str, source: str) -> str:
    """mypy's report on ``source`` written as ``tmp_path/name`` (a cache of its own)."""
    module = tmp_path / name
    module.write_text(source)
    out, err, _ = api.run(
        [
            "--config-file",
            str(PYPROJECT),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(module),
        ]
    )
    assert err == ""
    return out
