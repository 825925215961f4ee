"""The installed wheel is the package alone: it must not lean on the repository around it.

The wheel holds ``durable_lambda`` and nothing else (``[tool.setuptools.packages.find]``),
so a module of it that imports ``functions`` (the sample tasks, the Lambda entry
points) or ``tests`` works in a clone and fails for every user who installed it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "durable_lambda"
#: Top-level packages of the repository that are not in the wheel.
REPOSITORY_ONLY = ("functions", "tests", "benchmarks")
#: Known references, each with why it is not (yet) a break for an installed user.
ALLOWED = {
    # The emulator's default handlers are the repository's Lambda entry points;
    # callers outside a clone pass worker_handler= and scheduler_handler=.
    ("durable_lambda/local/stack.py", "functions.worker.app.handler"),
    ("durable_lambda/local/stack.py", "functions.scheduler.app.handler"),
}


#: Package data, not modules: ``init`` copies it into a user's project.
SCAFFOLD = PACKAGE / "cli" / "scaffold" / "project"


def _package_files() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts and not p.is_relative_to(SCAFFOLD)
    )


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _repository_only(name: str) -> bool:
    return name.partition(".")[0] in REPOSITORY_ONLY


def _references(path: Path) -> set[str]:
    """Modules of the repository named by ``path``: imports, and dotted names in strings.

    Strings count because modules are also loaded by name (``importlib``,
    ``DL_TASK_MODULES`` defaults, handler paths).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if _repository_only(alias.name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _repository_only(node.module):
                found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if _repository_only(text) and "." in text and text.replace(".", "").isidentifier():
                found.add(text)
    return found


def test_no_module_of_the_package_names_a_repository_only_module():
    named = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in _package_files()
        for name in _references(path)
    }
    assert named - ALLOWED == set()


def test_every_module_of_the_package_imports_without_the_repository(tmp_path: Path):
    # The package alone, as the wheel installs it, on a path with no clone beside it.
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "durable_lambda", ignore=shutil.ignore_patterns("__pycache__"))
    modules = [_module_name(path) for path in _package_files()]
    script = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        module = importlib.import_module(name)\n"
        f"        assert module.__file__.startswith({str(site)!r}), module.__file__\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        f"for name in {REPOSITORY_ONLY!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    failed.append(f'{name} is importable: this check would prove nothing')\n"
        "print('\\n'.join(failed))\n"
    )
    # -I: no PYTHONPATH, no current directory on the path; the clone stays out of reach.
    done = subprocess.run(  # noqa: S603 - our own interpreter, a script we built
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
