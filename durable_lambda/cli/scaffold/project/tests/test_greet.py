"""Tasks run in-process with LocalRunner: waits skipped, a short Lambda deadline, no AWS."""

from tasks.greet import greet

from durable_lambda.testing import LocalRunner


def test_greet_completes_with_the_composed_message():
    runner = LocalRunner(deadline=3.0)

    result = runner.run(greet, {"name": "Ada"})

    assert result.ok
    assert result.output["message"] == "Hello, Ada!"
    # The wait ended the first invocation; a second one finished the run.
    assert runner.invocations[result.run_id] == 2
