"""The HTTP API: ``build_api`` for a resolver on any client, ``handler`` for Lambda."""

from durable_lambda.api.app import build_api, openapi_document
from durable_lambda.api.handler import handler, reset, warm
from durable_lambda.api.service import ApiError, ApiService

__all__ = ["ApiError", "ApiService", "build_api", "handler", "openapi_document", "reset", "warm"]
