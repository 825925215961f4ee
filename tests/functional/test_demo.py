"""``make demo`` is the quick start's promise: the dev stack runs every sample to its end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.moto, pytest.mark.emulator, pytest.mark.slow]


def _row(out: str, task: str) -> list[str]:
    match = re.search(rf"^│ {task} +│(.*)│$", out, re.MULTILINE)
    assert match is not None, f"no summary row for {task}:\n{out}"
    return [cell.strip() for cell in match[1].split("│")]


def test_the_demo_runs_every_sample_to_completion_on_the_dev_stack():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "DL_"))}
    done = subprocess.run(
        [sys.executable, "-m", "functions.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "4 of 4 runs completed." in out
    assert re.search(r"^API http://127\.0\.0\.1:\d+", out, re.MULTILINE)
    assert re.search(r"^Viewer http://127\.0\.0\.1:\d+/viewer", out, re.MULTILINE)
    assert len(re.findall(r"^triggered [\w-]+ over HTTP: run_\w+$", out, re.MULTILINE)) == 4
    # The order blocked on its approval token until the demo completed it...
    assert re.search(r"completing approval token tok_\w+ over HTTP", out)
    _run, status, invocations, _duration, notes = _row(out, "checkout")
    assert status == "COMPLETED"
    # ...and its first charge was declined, then retried through SQS.
    assert re.search(r"charge#0 [2-5] attempts", notes)
    # 12 chunks of 0.5 s do not fit one 6-second invocation: the run chained.
    _run, status, invocations, _duration, _notes = _row(out, "import-chunks")
    assert status == "COMPLETED"
    assert int(invocations) >= 2
    assert _row(out, "index-documents")[1] == "COMPLETED"
    assert _row(out, "index-documents")[4] == "8/8 child runs completed"
    assert _row(out, "publish-digest")[4] == "3/3 child runs completed"
    # The live stream showed runs as they changed.
    assert re.search(r"^  run_\w+ extract-document +COMPLETED", out, re.MULTILINE)
