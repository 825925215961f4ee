"""``make demo``: sample tasks run to completion on an embedded moto stack.

A repository command, not part of the installed package: it runs the sample
tasks in ``functions/tasks``, which only a clone has (``python -m functions.demo``).

Each resume message becomes a simulated Lambda invocation with a 3-second
deadline, so long work visibly chains across invocations; waits are skipped
by the clock. DynamoDB and S3 are moto's, in-process: no Docker, no account.
An order waits on an approval token until the demo completes it, as a
manager would with ``tokens.complete``.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any

from durable_lambda.errors import PayloadValidationError
from durable_lambda.settings import Settings
from durable_lambda.testing import LocalRunner

DEADLINE_SECONDS = 3.0
SHOWN_ENTRIES = 8  # longer journals print their first and last three entries

SAMPLES: list[tuple[str, Any]] = [
    ("process-order", {"order_id": "A-1001", "amount_cents": 4200, "email": "ada@example.com"}),
    ("process-order", {"order_id": "A-1002", "amount_cents": 999, "email": "bob@example.com"}),
    ("render-report", {"pages": 40}),
    ("nightly-digest", {"day": "2026-11-20"}),
]


def _fmt_delay(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds >= 3600:
        return f" (delay {seconds / 3600:.1f} h)"
    return f" (delay {seconds:.1f} s)"


def _print_run(runner: LocalRunner, run_id: str, wall: float) -> None:
    run = runner.client.get_run(run_id)
    journal = runner.journal(run_id)
    print(f"\n{run.task_id}  {run_id}")
    print(
        f"  status {run.status.value}, invocations {runner.invocations[run_id]}, "
        f"attempt {run.attempt}, {len(journal)} journal entries, wall {wall:.1f} s"
    )
    shown = journal if len(journal) <= SHOWN_ENTRIES else [*journal[:3], None, *journal[-3:]]
    for entry in shown:
        if entry is None:
            print(f"    ... {len(journal) - 6} more steps ...")
            continue
        status, extra = entry.status.value, ""
        if entry.kind == "WAIT" and entry.wake_at is not None:
            extra = f" until {entry.wake_at:%H:%M:%S}"
            status = "WAITED" if entry.wake_at <= runner.clock.now() else status
        print(f"    {entry.key:<22} {status:<10} attempts {entry.attempts}{extra}")
    for event in runner.timeline(run_id):
        if event.kind in {"step_retry_scheduled", "run_retry_scheduled", "suspended"}:
            print(f"    timeline: {event.kind}: {event.detail}{_fmt_delay(event.delay)}")
    if run.output:
        print(f"  output {run.output}")
    if run.error:
        print(f"  error {run.error.type}: {run.error.message}")


def main() -> int:
    """Run the samples on moto and print each run's journal."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    from moto import mock_aws  # noqa: PLC0415 - the local extra

    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415
    from durable_lambda.local.resources import ensure_resources  # noqa: PLC0415

    modules = Settings.from_env().task_modules or ("functions.tasks",)
    for module in modules:
        importlib.import_module(module)
    print(f"durable-lambda demo: tasks from {', '.join(modules)}; moto DynamoDB + S3 in-process;")
    print(f"each invocation gets a {DEADLINE_SECONDS:.0f} s Lambda deadline; waits are skipped.")
    with mock_aws():
        settings = ensure_resources(
            Settings(table_name="durable-lambda-demo", bucket_name="durable-lambda-demo")
        )
        ports = aws_ports(settings)
        runner = LocalRunner(
            settings=settings,
            store=ports.store,
            flow=ports.flow,
            tokens=ports.tokens,
            deadline=DEADLINE_SECONDS,
        )
        try:
            runner.trigger("process-order", {"order_id": "", "amount_cents": -1, "email": "x"})
        except PayloadValidationError as exc:
            print(f"\nrejected trigger (no run created): {exc}")
        for task_id, payload in SAMPLES:
            start = time.perf_counter()
            handle = runner.start(task_id, payload)
            for token in runner.pending_tokens(handle.run_id):
                # The order waits for a manager: approve it as tokens.complete would.
                print(f"\napproving {token.name} token {token.token_id} of {handle.run_id}")
                runner.complete_token(token.token_id, {"approved": True, "by": "demo manager"})
            _print_run(runner, handle.run_id, time.perf_counter() - start)
        failed = [r for r in runner.client.list_runs() if r.status.value != "COMPLETED"]
    print(f"\n{len(SAMPLES) - len(failed)} of {len(SAMPLES)} runs completed.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
