"""The pure engine: journal and replay, scopes, composition, retry, run records and rules.

May import only the standard library, pydantic (through ``serde``) and ``durable_lambda.errors``:
never boto3, an adapter, or any module outside ``engine/``; it performs no I/O.
"""
