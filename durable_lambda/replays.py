"""Replay a run: a new run of the same task, optionally from a named step.

``Client.replay`` (and ``runs.replay``) land here. The new run links to the
original (``replay_of``), keeps its queue, concurrency key, priority and tags,
and takes the original payload unless given a new one. From a named step, the
original's journal before that step (:func:`durable_lambda.engine.replays.history_before`)
is copied into the new run first, so those calls replay their recorded
results and are not executed again; they keep those results even when the
replay is given a new payload.

The order of writes makes a failure leave nothing a run could read: every
check (the run, its task, the step, the payload) happens before the first
write; the copied journal is written before its run exists; the run and its
TRIGGERED event are one write; then the first message is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_lambda.engine.records import EventKind, ResumeMessage, RunRecord, TimelineEvent
from durable_lambda.engine.replays import history_before
from durable_lambda.engine.resume import plan_in
from durable_lambda.engine.state import RunStatus
from durable_lambda.ids import new_run_id
from durable_lambda.messages import send_resume
from durable_lambda.task import RunHandle

if TYPE_CHECKING:
    from durable_lambda.client import Client


def replay_run(
    client: Client, run_id: str, payload: Any = None, from_step: str | None = None
) -> RunHandle:
    """Start a replay of ``run_id`` through ``client`` (see :meth:`Client.replay`)."""
    original = client.get_run(run_id)
    definition = client.definition(original.task_id)
    history = []
    if from_step is not None:
        history = history_before(run_id, client.store.load_journal(run_id), from_step)
    encoded = original.payload if payload is None else definition.encode_payload(payload)
    now = client.clock.now()
    run = RunRecord(
        run_id=new_run_id(),
        task_id=original.task_id,
        status=RunStatus.QUEUED,
        payload=encoded,
        created_at=now,
        updated_at=now,
        queue=original.queue,
        concurrency_key=original.concurrency_key,
        priority=original.priority,
        tags=original.tags,
        replay_of=original.run_id,
    )
    since = f" from step {from_step!r} ({len(history)} entries copied)" if from_step else ""
    detail = f"task {run.task_id}: replay of {run_id}{since}"
    event = TimelineEvent(now, EventKind.TRIGGERED, detail)
    if history:
        client.store.write_journal(run.run_id, history)
    client.store.create_run(run, None, [event])
    send_resume(client.queue, ResumeMessage(run.run_id, run.epoch), plan_in(0))
    return RunHandle(run.run_id, run.task_id)
