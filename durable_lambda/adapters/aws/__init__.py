"""The ports on AWS: DynamoDB (``dynamodb/``), S3, SQS, and ``aws_ports`` wiring them from settings.

They may import boto3, the engine, ``ports``, ``values`` and ``errors``; never a memory fake.
"""

from durable_lambda.adapters.aws.ports import AwsPorts, aws_ports

__all__ = ["AwsPorts", "aws_ports"]
