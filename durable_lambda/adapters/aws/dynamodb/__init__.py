"""The run store and the flow store on one DynamoDB table: item layout, requests, stores, indexes.

Its modules may import botocore, the engine, ``values`` and ``errors``; never another adapter.
"""
