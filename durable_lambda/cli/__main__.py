"""``python -m durable_lambda.cli``: the same as the ``durable-lambda`` command."""

from durable_lambda.cli.app import main

if __name__ == "__main__":
    main()
