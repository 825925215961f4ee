"""The API function's Lambda handler: built once per execution environment from settings."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from durable_lambda.api.app import build_api
from durable_lambda.api.service import ApiService
from durable_lambda.lambda_entry import publish_catalog
from durable_lambda.services import build_services
from durable_lambda.settings import Settings
from durable_lambda.task import default_registry

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

_api: APIGatewayRestResolver | None = None


def _build(settings: Settings | None = None) -> APIGatewayRestResolver:
    global _api  # noqa: PLW0603 - one resolver per Lambda execution environment, reused warm
    if _api is not None and settings is None:
        return _api
    from durable_lambda.adapters.aws import aws_ports  # noqa: PLC0415 - boto3 at cold start only

    settings = settings or Settings.from_env()
    for module in settings.task_modules:
        importlib.import_module(module)
    ports = aws_ports(settings)
    services = build_services(ports, default_registry, settings)
    publish_catalog(ports)
    _api = build_api(ApiService(services.client, settings))
    return _api


def warm(settings: Settings | None = None) -> None:
    """Build the API during Lambda's init phase (``settings``: tests; default: the environment)."""
    _build(settings)


def reset() -> None:
    """Forget the built API (tests that change settings)."""
    global _api  # noqa: PLW0603
    _api = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (REST, proxy integration) events in, responses out."""
    return dict(_build().resolve(event, context))
