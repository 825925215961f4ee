"""Listing runs: tag and created-time filters, and pages that continue where the last stopped."""

from __future__ import annotations

import pytest
from contract_backends import Backend, at

from durable_lambda.engine.records import RunQuery
from durable_lambda.engine.state import RunStatus


def _ids(runs):
    return [r.run_id for r in runs]


def _page_through(backend: Backend, query: RunQuery) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = backend.store.list_runs(
            RunQuery(**{**{f: getattr(query, f) for f in query.__slots__}, "before": before})
        )
        if not page:
            return pages
        pages.append(_ids(page))
        before = (page[-1].created_at, page[-1].run_id)


@pytest.mark.parametrize("task_id", [None, "mail"])
def test_pages_cover_every_run_once_newest_first(backend: Backend, task_id):
    runs = [backend.new_run(task_id="mail") for _ in range(7)]
    backend.store.take_lease(runs[2].run_id, 0, "owner", at(900), at(10))  # RUNNING too
    pages = _page_through(backend, RunQuery(task_id=task_id, limit=3))
    assert pages == [_ids(runs[::-1][i : i + 3]) for i in range(0, 7, 3)]


def test_runs_sharing_a_creation_time_page_by_run_id(backend: Backend):
    same = [backend.new_run(run_id=f"run_same_{i}", created_at=at(5)) for i in range(4)]
    pages = _page_through(backend, RunQuery(limit=3))
    assert [run_id for page in pages for run_id in page] == sorted(_ids(same), reverse=True)


def test_a_tag_filter_keeps_only_tagged_runs(backend: Backend):
    tagged = [backend.new_run(tags=("vip", "eu")) for _ in range(3)]
    backend.new_run(tags=("eu",))
    backend.new_run()
    for query in (RunQuery(tag="vip"), RunQuery(tag="vip", task_id="orders")):
        assert _ids(backend.store.list_runs(query)) == _ids(tagged[::-1])
    assert _page_through(backend, RunQuery(tag="vip", limit=2)) == [
        _ids(tagged[::-1][:2]),
        _ids(tagged[:1]),
    ]


@pytest.mark.parametrize("task_id", [None, "orders"])
def test_a_created_range_is_inclusive_at_both_ends(backend: Backend, task_id):
    runs = [backend.new_run() for _ in range(6)]  # created at(1) .. at(6)
    query = RunQuery(task_id=task_id, created_from=at(2), created_to=at(4))
    assert _ids(backend.store.list_runs(query)) == _ids(runs[1:4][::-1])
    assert _ids(backend.store.list_runs(RunQuery(task_id=task_id, created_from=at(5)))) == _ids(
        runs[4:][::-1]
    )
    assert _ids(backend.store.list_runs(RunQuery(task_id=task_id, created_to=at(1)))) == _ids(
        runs[:1]
    )


def test_status_tag_and_range_combine(backend: Backend):
    backend.new_run(tags=("x",))
    wanted = backend.new_run(tags=("x",), status=RunStatus.COMPLETED, finished_at=at(9))
    backend.new_run(status=RunStatus.COMPLETED, finished_at=at(9))
    backend.new_run(tags=("x",), status=RunStatus.COMPLETED, finished_at=at(9))
    for task_id in (None, "orders"):
        query = RunQuery(
            task_id=task_id,
            status=RunStatus.COMPLETED,
            tag="x",
            created_from=at(2),
            created_to=at(3),
        )
        assert _ids(backend.store.list_runs(query)) == [wanted.run_id]


def test_a_run_moving_between_status_partitions_mid_listing_is_listed_once(aws: Backend):
    """A listing of every status reads one index partition after another.

    A run that leaves a partition already read (QUEUED) for one read later
    (RUNNING) is in both answers: it must be listed once, with its later status.
    """
    runs = [aws.new_run() for _ in range(3)]
    moved = runs[1]
    other = aws.other_store()
    read: list[str] = []

    def move_once_queued_was_read(params, **_):
        read.append(params["ExpressionAttributeValues"][":pk"]["S"])
        if read[:-1] == ["STATUS#QUEUED"]:  # the next partition's read is about to start
            other.take_lease(moved.run_id, 0, "owner", at(900), at(10))

    events = aws.store.client.meta.events  # type: ignore[attr-defined]
    events.register("provide-client-params.dynamodb.Query", move_once_queued_was_read)
    listed = aws.store.list_runs(RunQuery())
    assert "STATUS#QUEUED" in read[:-1], "the QUEUED partition was not read before another"
    assert _ids(listed) == _ids(runs[::-1])
    assert {r.run_id: r.status for r in listed}[moved.run_id] is RunStatus.RUNNING


def test_a_filtered_listing_reads_on_past_pages_that_match_nothing(aws: Backend):
    """DynamoDB filters after it reads a page: a page of untagged runs answers no item.

    The listing must ask for the next page until it has enough, not stop at an
    empty one.
    """
    tagged = [aws.new_run(tags=("vip",)) for _ in range(2)]
    for _ in range(30):  # newer: the first page (25 items) holds none of the tagged runs
        aws.new_run()
    queries: list[str] = []
    events = aws.store.client.meta.events  # type: ignore[attr-defined]
    events.register("provide-client-params.dynamodb.Query", lambda **_: queries.append("q"))
    assert _ids(aws.store.list_runs(RunQuery(tag="vip", task_id="orders", limit=2))) == _ids(
        tagged[::-1]
    )
    assert len(queries) >= 2, "the listing stopped after one page"
