"""Implementations of the ports: ``memory`` (reference fakes) and AWS (DynamoDB, S3, SQS)."""
