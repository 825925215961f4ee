"""``durable-lambda init PATH``: scaffold a user's own project (``durable_lambda.cli.scaffold``)."""

# ruff: noqa: ARG001 - `debug` is read by the @command wrapper, not the body

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from durable_lambda.cli import scaffold
from durable_lambda.cli.app import app, emit
from durable_lambda.cli.options import Debug, Json, command


@app.command()
@command
def init(
    path: Annotated[Path, typer.Argument(help="The new project's folder (created; or empty).")],
    *,
    name: Annotated[
        str | None, typer.Option(help="Stack name (default: the folder's name).")
    ] = None,
    wheel: Annotated[
        Path | None,
        typer.Option(help="Install durable-lambda from this built wheel instead of the index."),
    ] = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Create a project: template.yaml, samconfig.toml, src/tasks, tests, events, README."""
    written = scaffold.init(path, name=name, wheel=wheel)
    data = {"path": str(path), "files": [f.as_posix() for f in written]}

    def human(console: Console) -> None:
        console.print(f"created {path} ({len(written)} files). Next:")
        console.print(f"  cd {path}")
        console.print("  python -m venv .venv && .venv/bin/pip install -r requirements-dev.txt")
        console.print("  .venv/bin/pytest")
        console.print("  .venv/bin/durable-lambda dev --src src --tasks tasks")

    emit(data, as_json=json_, human=human)
