"""`sam build` bundles durable_lambda and the task modules, and the bundle imports on python3.12.

Offline apart from PyPI (the function's requirements). Skipped, saying why,
where the SAM CLI (``make sam-validate`` installs it) or a python3.12 is absent.
The template is built for this machine's architecture (the functions are arm64:
their compiled wheels would not load here); everything else is the template's.
"""

# ruff: noqa: S603, S607 - runs the SAM CLI and python3.12 with arguments built here

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv" / "sam" / "bin" / "sam"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def _python312_env() -> dict[str, str] | None:
    """An environment in which ``python3.12`` runs (pyenv's shim needs the version named)."""
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1")
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        bare = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        wanted = [v for v in bare if v.startswith("3.12")]
        current = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
        if wanted:
            env["PYENV_VERSION"] = ":".join([v for v in (current, wanted[0]) if v in bare])
    found = shutil.which("python3.12", path=env.get("PATH"))
    if found is None:
        return None
    works = subprocess.run([found, "-c", "pass"], env=env, capture_output=True, check=False)
    return env if works.returncode == 0 else None


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_sam_build_bundles_the_library_and_the_tasks_and_the_worker_imports(tmp_path):
    if not SAM.exists():
        pytest.skip(f"no SAM CLI at {SAM.relative_to(ROOT)}: `make sam-validate` installs it")
    env = _python312_env()
    if env is None:
        pytest.skip("no python3.12 interpreter on PATH: sam build needs the runtime's Python")
    build = tmp_path / "build"
    host = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    template = tmp_path / "template.yaml"
    text = (ROOT / "template.yaml").read_text()
    assert "Architectures: [arm64]" in text
    template.write_text(
        text.replace("Architectures: [arm64]", f"Architectures: [{host}]").replace(
            "CodeUri: .", f"CodeUri: {ROOT}"
        )
    )
    done = subprocess.run(
        [
            str(SAM),
            "build",
            "WorkerFunction",
            "--template",
            str(template),
            "--build-dir",
            str(build),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bundle = build / "WorkerFunction"

    assert (bundle / "durable_lambda" / "__init__.py").is_file()
    assert (bundle / "functions" / "worker" / "app.py").is_file()
    assert (bundle / "functions" / "tasks" / "__init__.py").is_file()
    assert not (bundle / ".venv").exists()  # neither the dev nor the SAM CLI virtualenv
    assert _size(bundle) < LAMBDA_UNZIPPED_LIMIT

    # The Lambda runtime provides boto3; the bundle brings everything else.
    runtime = tmp_path / "runtime"
    subprocess.run(
        [
            "python3.12",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(runtime),
            "boto3",
            "s3transfer",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import importlib, os, json\n"
        "from durable_lambda.task import default_registry\n"
        "from durable_lambda.lambda_entry import worker_handler, scheduler_handler\n"
        "for name in os.environ['DL_TASK_MODULES'].split(','):\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(default_registry.ids())))\n"
    )
    imported = subprocess.run(
        [
            "python3.12",
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(bundle), str(runtime)]!r}\n" + probe,
        ],
        env=dict(env, DL_TASK_MODULES="functions.tasks"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    here = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ, DL_TASK_MODULES="functions.tasks"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bundled = json.loads(imported.stdout.strip().splitlines()[-1])
    assert bundled  # the sample tasks are there
    assert bundled == json.loads(here.stdout.strip().splitlines()[-1])
