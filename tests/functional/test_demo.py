"""``make demo`` is the quick start's promise: it must run and show every sample run completing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.moto
def test_the_demo_runs_every_sample_to_completion():
    done = subprocess.run(
        [sys.executable, "-m", "functions.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 of 4 runs completed." in done.stdout
    assert "rejected trigger (no run created)" in done.stdout
    # The 40-page report (4 s of work) chained across 3-second invocations.
    report = re.search(r"render-report .*\n  status COMPLETED, invocations (\d+)", done.stdout)
    assert report is not None
    assert int(report[1]) >= 2
    assert "step_retry_scheduled" in done.stdout
    # Each order blocked on its approval token until the demo completed it.
    assert len(re.findall(r"approving approval token tok_\w+ of run_\w+", done.stdout)) == 2
    assert len(re.findall(r"^ +\$for_token#0 +COMPLETED", done.stdout, re.MULTILINE)) == 2
