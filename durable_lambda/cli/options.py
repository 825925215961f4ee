"""The options the CLI's commands share, declared once, and the decorator that adds them.

A command that reaches a deployment declares ``target: Target`` and is
decorated with :func:`reaching`, naming which of the target's options it
takes; the decorator adds those options (and ``--debug``) to the command's
signature, as typer reads it, and builds the :class:`Target` from them inside
:func:`handled`, so a stack that cannot be read is one line, like any error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer

from durable_lambda.cli.target import CliError, Target
from durable_lambda.errors import DurableLambdaError

F = TypeVar("F", bound=Callable[..., Any])

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document (for scripts).")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
Endpoint = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help=(
            "One endpoint for all AWS services "
            "(default: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else AWS)."
        ),
    ),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region.")]
Table = Annotated[str | None, typer.Option("--table", help="DynamoDB table (env DL_TABLE_NAME).")]
Bucket = Annotated[
    str | None, typer.Option("--bucket", help="S3 bucket for large values (env DL_BUCKET_NAME).")
]
QueueUrl = Annotated[
    str | None,
    typer.Option("--queue-url", help="The worker's resume queue (env DL_RESUME_QUEUE_URL)."),
]
Tasks = Annotated[
    list[str] | None,
    typer.Option(
        "--tasks-module", "-m", help="Module defining tasks (repeatable) (env DL_TASK_MODULES)."
    ),
]
Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="A deployed CloudFormation stack: table, bucket, queue and API URL from its outputs.",
    ),
]
ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="Go through this HTTP API (SigV4-signed) instead of the table.",
    ),
]
ViaApi = Annotated[
    bool,
    typer.Option("--via-api", help="With --stack: go through the stack's HTTP API (ApiUrl)."),
]

#: Each option a command may take to name its target: its parameter, type and default.
TARGET_OPTIONS: dict[str, tuple[str, Any, Any]] = {
    "endpoint_url": ("endpoint_url", Endpoint, None),
    "region": ("region", Region, None),
    "table": ("table", Table, None),
    "bucket": ("bucket", Bucket, None),
    "queue_url": ("queue_url", QueueUrl, None),
    "task_modules": ("tasks_module", Tasks, None),
    "stack": ("stack", Stack, None),
    "api_url": ("api_url", ApiUrl, None),
    "via_api": ("via_api", ViaApi, False),
}
#: Where the table is: every command that reaches a deployment takes these.
WHERE = ("endpoint_url", "region", "table", "stack")
#: Through the HTTP API instead of the table.
VIA_API = ("api_url", "via_api")


def describe(exc: BaseException) -> str:
    """One line naming the problem."""
    from botocore.exceptions import ClientError, NoCredentialsError  # noqa: PLC0415

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or --endpoint-url)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = exc.operation_name
        return f"AWS {operation} failed: {error.get('Code', '?')}: {error.get('Message', exc)}"
    if isinstance(exc, DurableLambdaError | OSError | ValueError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


@contextmanager
def handled(*, debug: bool) -> Iterator[None]:
    """Turn any error into one line on stderr and exit 1 (re-raise it under ``debug``)."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(1) from None


def command(fn: F) -> F:
    """Run ``fn`` under :func:`handled`, with its ``debug`` flag."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with handled(debug=bool(kwargs.get("debug"))):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def reaching(*fields: str) -> Callable[[F], F]:
    """Give a command the options naming ``fields`` of its :class:`Target`, and ``--debug``.

    The command declares ``target: Target`` (filled from those options) instead
    of the options themselves; an error anywhere, building the target
    included, is one line on stderr (see :func:`handled`).

    Raises:
        CliError: A field that is not one of :data:`TARGET_OPTIONS` (a programming error).
    """
    unknown = set(fields) - set(TARGET_OPTIONS)
    if unknown:
        raise CliError(f"no target options {sorted(unknown)}")

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True)
        params = [p for name, p in own.parameters.items() if name != "target"]
        added = {"debug": (Debug, False)} | {
            TARGET_OPTIONS[f][0]: TARGET_OPTIONS[f][1:] for f in fields
        }
        params += [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default
            )
            for name, (kind, default) in added.items()
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            debug = bool(kwargs.pop("debug", False))
            chosen = {f: kwargs.pop(TARGET_OPTIONS[f][0]) for f in fields}
            modules = chosen.pop("task_modules", None)
            with handled(debug=debug):
                target = Target(**chosen, task_modules=tuple(modules) if modules else None)
                return fn(*args, target=target, **kwargs)

        del wrapper.__wrapped__  # typer reads the signature below, not ``fn``'s
        wrapper.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate
