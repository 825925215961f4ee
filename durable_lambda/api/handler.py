"""The API function's Lambda handler: built once per execution environment from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_lambda.api.app import build_api
from durable_lambda.api.service import ApiService
from durable_lambda.lambda_entry import cold_start
from durable_lambda.observability import run_metrics
from durable_lambda.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

_api: APIGatewayRestResolver | None = None


def _build(settings: Settings | None = None) -> APIGatewayRestResolver:
    global _api  # noqa: PLW0603 - one resolver per Lambda execution environment, reused warm
    if _api is not None and settings is None:
        return _api
    settings, _, services = cold_start(settings)
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
    api = _build()
    metrics = run_metrics()  # runs triggered, token waits
    try:
        return dict(api.resolve(event, context))
    finally:
        metrics.flush()
