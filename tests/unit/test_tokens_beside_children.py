"""A run waiting on a token and on a batch of children at once: both wake-ups reach it.

Children's nudges are counted while a parent waits on several of them (it
wakes once, when a wait may have ended); a token's completion is not a child's
end and must take the run at once, count or no count.
"""

from __future__ import annotations

from typing import Any

from durable_lambda import RunStatus, TaskContext, task, wait


def test_a_token_completion_wakes_a_parent_that_counts_its_children(registry, runner):
    @task(id="beside-kid", registry=registry)
    async def kid(payload: int) -> int:
        token = await wait.create_token(name=f"kid-{payload}")
        return int(await wait.for_token(token)) + payload

    @task(id="beside-parent", registry=registry)
    async def parent(payload: None, ctx: TaskContext) -> dict[str, Any]:
        async def approval(_ctx: TaskContext) -> Any:
            token = await wait.create_token(name="approval")
            return await wait.for_token(token)

        async def kids(_ctx: TaskContext) -> list[int]:
            results = await kid.batch_trigger_and_wait([1, 2, 3], name="kids")
            return [r.unwrap() for r in results]

        # The kids first: a branch that suspends stops its siblings' child triggers
        # for this invocation (tokens alone are still created beside it).
        batch = await ctx.parallel({"kids": kids, "approval": approval})
        return {item.name: item.result for item in batch.items}

    handle = runner.start(parent, None)
    (approval,) = runner.pending_tokens(handle.run_id)
    kid_runs = [c["run_id"] for c in runner.tree(handle.run_id)["children"]]
    assert len(kid_runs) == 3
    # The children wait on their own tokens: the parent keeps a count of them.
    assert runner.client.get_run(handle.run_id).awaited_wake is not None

    runner.complete_token(approval.token_id, "yes")
    # Woken by the completion although no child has ended: the approval is recorded.
    entries = runner.journal(handle.run_id)
    waits = [e for e in entries if e.kind.value == "TOKEN_WAIT"]
    assert [(e.scope, e.status.value) for e in waits] == [("parallel#0/approval", "COMPLETED")]
    assert runner.client.get_run(handle.run_id).status is RunStatus.SUSPENDED

    for i, run_id in enumerate(kid_runs, start=1):
        (token,) = runner.pending_tokens(run_id)
        runner.complete_token(token.token_id, str(10 * i))
    result = runner.result(handle.run_id)
    assert result is not None
    assert result.status is RunStatus.COMPLETED
    assert result.output == {"approval": "yes", "kids": [11, 22, 33]}
