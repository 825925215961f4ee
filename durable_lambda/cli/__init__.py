"""The ``durable-lambda`` command line (typer and rich): ``durable-lambda --help``."""

from durable_lambda.cli import (  # noqa: F401 - register their commands
    dev,
    logs,
    project,
    run_control,
    trigger,
)
from durable_lambda.cli.app import app, main
from durable_lambda.cli.tasks import tasks_app
from durable_lambda.cli.tokens import tokens_app

# Registered here, not in app.py: these commands use app.py's options and
# wrappers, and app.py importing them back would make an import cycle.
app.add_typer(tokens_app, name="tokens")
app.add_typer(tasks_app, name="tasks")

__all__ = ["app", "main"]
