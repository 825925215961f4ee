"""The API function's Lambda handler: built once per execution environment from settings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from durable_lambda.api.app import build_api
from durable_lambda.api.service import ApiService
from durable_lambda.lambda_entry import cold_start
from durable_lambda.observability import logger, run_metrics
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
    """API Gateway (REST, proxy integration) events in, responses out.

    Each request writes one ``api request`` line: method, resource, status and
    the run, task or token its path names (never the body or the query string,
    which may carry a callback secret).
    """
    api = _build()
    metrics = run_metrics()  # runs triggered, token waits
    ids = path_ids(str(event.get("path") or ""))
    logger.append_keys(request_id=getattr(context, "aws_request_id", None), **ids)
    try:
        response = dict(api.resolve(event, context))
        logger.info(
            "api request",
            extra={
                "method": event.get("httpMethod"),
                "resource": event.get("resource"),
                "status": response.get("statusCode"),
            },
        )
        return response
    finally:
        logger.remove_keys(["request_id", *ids])
        metrics.flush()


_PATH_IDS = re.compile(r"^/(?P<kind>runs|tasks|tokens|callbacks)/(?P<id>[^/?]+)")
_ID_KEYS = {"runs": "run_id", "tasks": "task_id", "tokens": "token_id", "callbacks": "token_id"}


def path_ids(path: str) -> dict[str, str]:
    """The run, task or token a request's path names, as log keys (``{}``: none)."""
    found = _PATH_IDS.match(path)
    if found is None:
        return {}
    return {_ID_KEYS[found["kind"]]: found["id"][:200]}
