"""``durable-lambda init``: a user's own project, ready for tests, ``dev`` and ``sam deploy``.

The files live under ``project/`` as package data. Its ``template.yaml`` is
this repository's template with the user's layout put in
(:func:`user_template`: handlers under ``src/handlers``, the task modules a
``TaskModules`` parameter); a unit test keeps the two in step, and
``python -m durable_lambda.cli.scaffold template.yaml`` regenerates it.
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

from durable_lambda import __version__
from durable_lambda.errors import DurableLambdaError

#: Files whose ``__NAME__`` and ``__REQUIREMENT__`` placeholders are filled in.
RENDERED = ("README.md", "samconfig.toml", "src/requirements.txt")
#: Package data cannot hold dotfiles reliably: these are renamed on copy.
RENAMED = {"gitignore": ".gitignore"}
#: Folders of the source tree that are never copied.
SKIPPED = {"__pycache__"}

#: ``(repository text, user text)`` pairs; each must occur exactly once.
SUBSTITUTIONS = (
    ("    CodeUri: .\n", "    CodeUri: src/\n"),
    # The repository's own task modules are the parameter's default; a project's live in src/.
    ("    Default: functions.tasks\n", "    Default: tasks\n"),
    (
        (
            "      at start-up, DL_TASK_MODULES). Put them under the template's folder: sam build\n"
            "      bundles that folder.\n"
        ),
        "      at start-up, DL_TASK_MODULES), under src/: sam build bundles that folder.\n",
    ),
    ("Handler: functions.worker.app.handler", "Handler: handlers.worker.handler"),
    ("Handler: functions.scheduler.app.handler", "Handler: handlers.scheduler.handler"),
    ("Handler: functions.api.app.handler", "Handler: handlers.api.handler"),
    ("Handler: functions.reaper.app.handler", "Handler: handlers.reaper.handler"),
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


class ScaffoldError(DurableLambdaError):
    """``init`` cannot write the project (names the path or value and why)."""


def source() -> Path:
    """The scaffold's source tree (package data)."""
    return Path(str(resources.files("durable_lambda.cli.scaffold") / "project"))


def user_template(repository_template: str) -> str:
    """This repository's ``template.yaml`` turned into a user project's.

    Raises:
        ScaffoldError: A text to replace is missing or ambiguous (names it).
    """
    text = repository_template
    for old, new in SUBSTITUTIONS:
        found = text.count(old)
        if found != 1:
            raise ScaffoldError(
                f"template.yaml has {found} occurrences of {old.strip()!r}, expected 1: "
                "update durable_lambda.cli.scaffold.SUBSTITUTIONS"
            )
        text = text.replace(old, new)
    return text


def requirement(wheel: Path | None) -> str:
    """What ``src/requirements.txt`` installs: the given wheel, else this version from the index.

    Raises:
        ScaffoldError: ``wheel`` is not an existing ``.whl`` file.
    """
    if wheel is None:
        known = __version__ != "0+unknown"
        return f"durable-lambda=={__version__}" if known else "durable-lambda"
    if wheel.suffix != ".whl" or not wheel.is_file():
        raise ScaffoldError(f"--wheel {str(wheel)!r} is not an existing .whl file")
    # sam build runs pip elsewhere: only an absolute path is found from there.
    return str(wheel.resolve())


def init(path: Path, *, name: str | None = None, wheel: Path | None = None) -> list[Path]:
    """Write a new project into ``path`` (created; it must be empty if it exists).

    Args:
        path: The project folder.
        name: The stack name (default: the folder's name, made valid).
        wheel: Install durable-lambda from this wheel instead of the index.

    Returns:
        The files written, relative to ``path``.

    Raises:
        ScaffoldError: ``path`` is a non-empty folder or a file, or ``name`` is not a
            valid CloudFormation stack name.
    """
    if name is None:
        # The folder's name made a valid stack name: my_flows -> my-flows.
        name = re.sub(r"[^A-Za-z0-9-]+", "-", path.resolve().name).strip("-")
        name = name if name[:1].isalpha() else f"tasks-{name}".rstrip("-")
    if not _NAME.match(name):
        raise ScaffoldError(
            f"project name {name!r} is not a valid stack name "
            "(a letter, then letters, digits or '-', at most 128): pass --name"
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ScaffoldError(f"{str(path)!r} exists and is not an empty folder")
    values = {"__NAME__": name, "__REQUIREMENT__": requirement(wheel)}
    root = source()
    written: list[Path] = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if file.is_dir() or SKIPPED & set(relative.parts):
            continue
        target = path / relative.with_name(RENAMED.get(relative.name, relative.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.as_posix() in RENDERED:
            text = file.read_text(encoding="utf-8")
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(file, target)
        written.append(target.relative_to(path))
    return written
