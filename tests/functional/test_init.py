"""``durable-lambda init``: the scaffolded project is complete and consistent; its tests pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import cfn_template
import pytest
import yaml
from typer.testing import CliRunner

from durable_lambda.cli import app
from durable_lambda.cli.scaffold import ScaffoldError, source, user_template

ROOT = Path(__file__).resolve().parents[2]


def _init(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["init", *args])
    return result.exit_code, result.stdout, result.stderr


def _template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=cfn_template._CfnLoader)  # noqa: S506 - SafeLoader subclass


def test_init_writes_a_project_whose_own_tests_pass(tmp_path: Path):
    project = tmp_path / "shop-flows"

    code, out, err = _init(str(project), "--json")

    assert code == 0, err
    files = set(json.loads(out)["files"])
    assert {
        "template.yaml",
        "samconfig.toml",
        "README.md",
        ".gitignore",
        "requirements-dev.txt",
        "src/requirements.txt",
        "src/tasks/greet.py",
        "src/handlers/worker.py",
        "tests/test_greet.py",
        "events/trigger_greet.json",
    } <= files
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_project_template_takes_the_task_modules_as_a_parameter(tmp_path: Path):
    project = tmp_path / "shop"
    assert _init(str(project))[0] == 0

    template = _template(project / "template.yaml")
    config = tomllib.loads((project / "samconfig.toml").read_text())

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DL_TASK_MODULES"] == {"Ref": "TaskModules"}
    assert template["Parameters"]["TaskModules"]["Default"] == "tasks"
    assert template["Globals"]["Function"]["CodeUri"] == "src/"
    handlers = [
        r["Properties"]["Handler"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert len(handlers) == 4
    for handler in handlers:  # each handler's module is in the project
        module = handler.rsplit(".", 1)[0]
        assert (project / "src" / (module.replace(".", "/") + ".py")).is_file(), handler
    assert config["default"]["deploy"]["parameters"]["stack_name"] == "shop"
    assert config["dev"]["deploy"]["parameters"]["stack_name"] == "shop-dev"
    assert "TaskModules=tasks" in config["dev"]["deploy"]["parameters"]["parameter_overrides"]


def test_the_scaffold_template_is_the_repository_template_with_the_user_layout():
    expected = user_template((ROOT / "template.yaml").read_text())
    shipped = (source() / "template.yaml").read_text()
    # On failure: python -m durable_lambda.cli.scaffold template.yaml
    assert shipped == expected


def test_user_template_names_a_missing_substitution():
    with pytest.raises(ScaffoldError, match=r"0 occurrences of 'CodeUri: \.'"):
        user_template("Parameters:\n")


def test_requirements_name_the_given_wheel_by_absolute_path(tmp_path: Path):
    wheel = tmp_path / "durable_lambda-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    project = tmp_path / "p"

    assert _init(str(project), "--wheel", str(wheel))[0] == 0

    lines = (project / "src" / "requirements.txt").read_text().splitlines()
    assert lines[-1] == str(wheel.resolve())


def test_init_refuses_a_non_empty_folder_in_one_line(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")

    code, out, err = _init(str(tmp_path))

    assert code == 1
    assert err.strip() == f"error: {str(tmp_path)!r} exists and is not an empty folder"
    assert out == ""
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_init_names_the_stack_after_the_folder_and_rejects_a_bad_name(tmp_path: Path):
    assert _init(str(tmp_path / "my_flows"))[0] == 0
    code, _, err = _init(str(tmp_path / "other"), "--name", "9lives")

    config = tomllib.loads((tmp_path / "my_flows" / "samconfig.toml").read_text())
    assert config["default"]["deploy"]["parameters"]["stack_name"] == "my-flows"
    assert code == 1
    assert "project name '9lives' is not a valid stack name" in err
    assert not (tmp_path / "other").exists()
