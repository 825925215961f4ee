"""The embedded dev stack: AWS Lambda and its SQS event source emulated on this machine.

Handlers run in subprocess execution environments with Lambda's cold and
warm starts, real deadlines, SIGKILL at timeout and reserved concurrency; a
moto server stands in for DynamoDB, S3 and SQS. No Docker, no AWS account.
"""
