"""Implementations of the ports: ``memory/`` (reference fakes) and ``aws/`` (DynamoDB, S3, SQS).

Adapters store and load; the rules they apply come from ``engine/``. Nothing but the wiring
(``services``, ``lambda_entry``, ``local``, ``testing``) imports them.
"""
