"""``dev --persist``: the state file keeps the callback key, so token URLs outlive a restart."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from durable_lambda.local import persist
from durable_lambda.local.dev_server import DevServer, dev_settings
from durable_lambda.local.resources import ensure_resources


def _state(path: Path, **fields: object) -> Path:
    path.write_text(json.dumps({"format": persist.FORMAT, "items": [], "objects": {}, **fields}))
    return path


def test_a_restarted_dev_stack_signs_callbacks_with_the_saved_key(tmp_path: Path):
    state = _state(tmp_path / "dev.json", callback_key="k" * 64)
    again = DevServer(["devtasks"], persist=state, log_dir=tmp_path)
    assert again.stack.settings.callback_key == "k" * 64


def test_without_a_saved_key_each_start_makes_its_own(tmp_path: Path):
    older = _state(tmp_path / "older.json")  # saved before keys were kept
    keys = {
        DevServer(["devtasks"], persist=older, log_dir=tmp_path).stack.settings.callback_key,
        DevServer(["devtasks"], log_dir=tmp_path).stack.settings.callback_key,
    }
    assert len(keys) == 2
    assert all(len(key) == 64 for key in keys)


def test_save_writes_the_stacks_key_and_load_leaves_it_out_of_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    path = tmp_path / "dev.json"
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        settings = ensure_resources(dev_settings(10.0).with_(callback_key="s" * 64), session)
        persist.save(path, session, settings)
        assert persist.saved_callback_key(path) == "s" * 64
        assert persist.load(path, session, settings) == (0, 0)


def test_a_state_file_of_another_format_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(persist.StateFileError, match=r"dev\.json.*not of format 1"):
        persist.saved_callback_key(path)
