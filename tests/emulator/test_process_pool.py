from __future__ import annotations

import os
import threading
import time

import pytest

from durable_lambda.local.process_pool import Chaos, PoolClosedError

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_second_invocation_is_warm_in_the_same_process(make_pool):
    pool = make_pool("echo")

    first = pool.invoke({"n": 1})
    second = pool.invoke({"n": 2})

    assert first.ok
    assert second.ok
    assert first.cold
    assert not second.cold
    assert first.pid == second.pid == first.result["pid"]
    assert first.result["imported_at"] == second.result["imported_at"]  # imported once
    assert second.result["event"] == {"n": 2}
    assert pool.stats.cold_starts == 1
    assert pool.stats.warm_starts == 1


def test_context_carries_request_id_and_function_name(make_pool):
    pool = make_pool("echo", name="my-fn", timeout=3.0)

    result = pool.invoke({}, request_id="req-1")

    assert result.result["request_id"] == "req-1"
    assert result.result["function_name"] == "my-fn"
    assert 0 < result.result["remaining_ms"] <= 3000  # the function's own 3 s deadline


def test_invocation_past_timeout_is_killed_and_next_one_is_cold(make_pool):
    pool = make_pool("sleep", timeout=1.0)

    timed_out = pool.invoke({"seconds": 30})
    after = pool.invoke({"seconds": 0})

    assert timed_out.timed_out
    assert timed_out.killed
    assert not timed_out.ok
    assert timed_out.error_type == "Sandbox.Timedout"
    # Killed at its 1 s timeout, long before the 30 s sleep ends (a loaded
    # machine may notice the deadline late, never early).
    assert 1.0 <= timed_out.duration_ms / 1000 < 30.0
    assert _gone(timed_out.pid)
    assert after.ok
    assert after.cold
    assert after.pid != timed_out.pid
    stats = pool.stats
    assert (stats.cold_starts, stats.kills, stats.timeouts, stats.environments) == (2, 1, 1, 1)


def test_concurrency_never_exceeds_reserved_concurrency(make_pool):
    pool = make_pool("interval", reserved_concurrency=2)
    results = []
    lock = threading.Lock()

    def call() -> None:
        result = pool.invoke({"seconds": 0.3})
        with lock:
            results.append(result)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(result.ok for result in results)
    spans = [(r.result["start"], r.result["end"]) for r in results]
    most_at_once = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most_at_once == 2
    assert len({r.pid for r in results}) == 2
    assert pool.stats.max_busy == 2


def test_remaining_time_decreases_in_real_time(make_pool):
    pool = make_pool("remaining", timeout=2.0)

    readings = pool.invoke({"pause": 0.2}).result

    assert readings[0] <= 2000
    assert readings[0] > readings[1] > readings[2]
    assert 190 <= readings[0] - readings[1] < 1000  # sleep(0.2) between readings


def test_user_prints_do_not_corrupt_the_protocol(make_pool, tmp_path):
    pool = make_pool("noisy")

    first = pool.invoke({})
    second = pool.invoke({})

    assert first.ok
    assert first.result == "clean"
    assert second.ok
    assert not second.cold
    assert second.pid == first.pid
    log = (tmp_path / "function.log").read_text()
    assert '"result": "from print"' in log
    assert "raw bytes on fd 1" in log
    assert "via sys.__stdout__" in log


def test_handler_exception_is_reported_and_environment_stays_warm(make_pool):
    pool = make_pool("fails")

    failed = pool.invoke({})
    again = pool.invoke({})

    assert not failed.ok
    assert not failed.killed
    assert failed.error == "ValueError: boom"
    assert failed.error_type == "ValueError"
    assert "raise ValueError" in failed.traceback
    assert not again.cold
    assert again.pid == failed.pid


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [("missing", "Runtime.HandlerNotFound"), ("IMPORTED_AT", "Runtime.HandlerNotFound")],
)
def test_missing_handler_fails_the_init_phase(make_pool, handler, error_type):
    result = make_pool(handler).invoke({})

    assert not result.ok
    assert result.cold
    assert result.error_type == error_type


def test_unimportable_module_fails_the_init_phase(make_pool):
    result = make_pool("no_such_module.handler").invoke({})

    assert result.error_type == "Runtime.ImportModuleError"
    assert "No module named 'no_such_module'" in result.error


def test_process_exit_during_invocation_is_reported_and_replaced(make_pool):
    pool = make_pool("exits")

    died = pool.invoke({})

    assert not died.ok
    assert died.killed
    assert not died.timed_out
    assert died.error_type == "Runtime.ExitError"
    assert "exit status 3" in died.error
    assert pool.stats.environments == 0
    assert pool.invoke({}).cold


def test_kill_random_after_kills_the_busy_environment(make_pool):
    pool = make_pool("sleep", timeout=10.0)
    results: list = []
    invocation = threading.Thread(target=lambda: results.append(pool.invoke({"seconds": 5})))
    invocation.start()
    # Kill once the environment is running the handler, however long its cold
    # start takes on a loaded machine: the kill must find it busy.
    deadline = time.monotonic() + 60
    while not any(e.busy for e in list(pool._all)) and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.kill_random_after(0.0)
    invocation.join(timeout=60)

    (result,) = results
    assert result.killed
    assert not result.timed_out
    assert "signal: kill" in result.error
    assert result.duration_ms < 5000  # cut short: the 5 s sleep never finished
    assert pool.stats.kills == 1


def test_chaos_kills_invocations_at_random_moments_within_the_timeout(make_pool):
    pool = make_pool("sleep", timeout=1.0, chaos=Chaos(probability=1.0, seed=3))

    results = [pool.invoke({"seconds": 2}) for _ in range(3)]

    assert all(r.killed and not r.ok for r in results)
    assert all(r.cold for r in results)
    assert pool.stats.kills == 3
    # Seed 3 draws kills at 0.54 s, 0.60 s and 0.07 s into the invocations: none
    # comes before its moment, and each came before the timeout (killed, not timed out).
    for result, moment in zip(results, [0.544, 0.604, 0.066], strict=True):
        assert moment <= result.duration_ms / 1000
        assert not result.timed_out


def test_closed_pool_refuses_invocations(make_pool):
    pool = make_pool("echo")
    pool.invoke({})
    pool.close()

    with pytest.raises(PoolClosedError):
        pool.invoke({})


def test_recycle_makes_the_next_invocation_cold_in_a_new_process(make_pool):
    pool = make_pool("echo")
    before = pool.invoke({"n": 1})

    pool.recycle()  # a deploy: new code means new environments
    after = pool.invoke({"n": 2})

    assert before.cold
    assert after.cold
    assert after.pid != before.pid
    assert _gone(before.pid)
    assert pool.stats.environments == 1


def test_recycle_retires_a_busy_environment_when_its_invocation_ends(make_pool, tmp_path):
    pool = make_pool("gated", timeout=60.0)
    results = []
    thread = threading.Thread(target=lambda: results.append(pool.invoke({})))
    thread.start()
    while not (tmp_path / "gated.started").exists():  # the invocation is running old code
        time.sleep(0.01)

    pool.recycle()
    (tmp_path / "gated.open").touch()
    thread.join()
    nxt = pool.invoke({})

    assert results[0].ok  # the in-flight invocation finished on the old code
    assert nxt.cold
    assert nxt.pid != results[0].pid
    assert _gone(results[0].pid)
