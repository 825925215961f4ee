"""The ``durable-lambda`` command line (typer and rich): ``durable-lambda --help``."""

from durable_lambda.cli import dev, project  # noqa: F401 - register `dev` and `init` on the app
from durable_lambda.cli.app import app, main

__all__ = ["app", "main"]
