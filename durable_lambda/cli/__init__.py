"""The ``durable-lambda`` command line (typer and rich): ``durable-lambda --help``."""

from durable_lambda.cli import dev  # noqa: F401 - registers `dev` on the app
from durable_lambda.cli.app import app, main

__all__ = ["app", "main"]
