"""Paged reads: every item a Query matches, page after page, through botocore's paginator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputPaginateTypeDef, QueryInputTypeDef

    from durable_lambda.adapters.aws.dynamodb.layout import Item


def query_items(client: DynamoDBClient, request: QueryInputTypeDef) -> Iterator[Item]:
    """Every item of ``request``, lazily: a caller that stops early reads no further page.

    A ``Limit`` in ``request`` is the size of each page, as in a single Query.
    """
    params: dict[str, Any] = dict(request)
    page_size = params.pop("Limit", None)
    params["PaginationConfig"] = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("query").paginate(**cast("QueryInputPaginateTypeDef", params))
    for page in pages:
        yield from page["Items"]
