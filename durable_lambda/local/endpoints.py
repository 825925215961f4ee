"""Where each AWS service is reached: one resolver for the CLI, the emulated stack, its functions.

Each service's endpoint is chosen once, in this order:

1. an explicit argument for that service (``--sqs-endpoint-url``, ``sqs=...``);
2. an explicit argument for every service (``--endpoint-url``);
3. the service's own variable, ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3's name);
4. ``AWS_ENDPOINT_URL``;
5. the fallback (the embedded moto server), or AWS itself when there is none.

The chosen endpoints then reach every boto3 client of this process through
:class:`RoutedSession` and every function subprocess through
:meth:`Endpoints.env`, so a stack that puts SQS and S3 on LocalStack and
DynamoDB on moto does so everywhere at once. :func:`localstack_endpoints`
asks ``localstack-client`` where LocalStack serves each service
(``LOCALSTACK_HOST``, ``EDGE_PORT`` and ``USE_SSL`` are its conventions).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session

#: The variable boto3 reads for every service.
ENV_ENDPOINT = "AWS_ENDPOINT_URL"
#: The services the stack uses, with the suffix of boto3's per-service variable.
SERVICE_ENV_SUFFIX = {
    "dynamodb": "DYNAMODB",
    "s3": "S3",
    "sqs": "SQS",
    "logs": "CLOUDWATCH_LOGS",
}
SERVICES = tuple(SERVICE_ENV_SUFFIX)
#: The services LocalStack serves here (its DynamoDB needs Java, its Lambda Docker).
LOCALSTACK_SERVICES = ("sqs", "s3", "logs")


def service_env(service: str) -> str:
    """boto3's endpoint variable of ``service`` (``AWS_ENDPOINT_URL_SQS``)."""
    suffix = SERVICE_ENV_SUFFIX.get(service, service.upper().replace("-", "_"))
    return f"{ENV_ENDPOINT}_{suffix}"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoint of each service (a service not listed goes to ``default``).

    Attributes:
        urls: Per service (``"sqs"``, ``"s3"``...), the endpoint URL.
        default: Where any other service goes (``None``: AWS).
    """

    urls: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None

    def url(self, service: str) -> str | None:
        """The endpoint of ``service`` (``None``: AWS's own)."""
        return self.urls.get(service, self.default)

    def env(self) -> dict[str, str]:
        """Variables that give a process these endpoints (one per service, and the default).

        Every service gets its own variable, so a variable the process would
        otherwise inherit cannot send one service elsewhere.
        """
        found = {ENV_ENDPOINT: self.default} if self.default is not None else {}
        found.update({service_env(service): url for service, url in self.urls.items()})
        return found

    def to_json(self) -> dict[str, str | None]:
        """Each known service's endpoint, for display."""
        return {service: self.url(service) for service in sorted({*SERVICES, *self.urls})}


def resolve_endpoints(
    *,
    endpoint_url: str | None = None,
    per_service: Mapping[str, str | None] | None = None,
    fallback: str | None = None,
    environ: Mapping[str, str] | None = None,
    services: Sequence[str] = SERVICES,
) -> Endpoints:
    """Choose each service's endpoint (see the module docstring for the order).

    Args:
        endpoint_url: An explicit endpoint for every service.
        per_service: Explicit endpoints per service (``None`` values are ignored).
        fallback: Where a service goes when nothing else says (the embedded moto).
        environ: The environment to read (default: ``os.environ``).
        services: The services to resolve.
    """
    source = os.environ if environ is None else environ
    explicit = {k: v for k, v in (per_service or {}).items() if v}
    every = endpoint_url or None
    urls: dict[str, str] = {}
    for service in dict.fromkeys([*services, *explicit]):
        url = (
            explicit.get(service)
            or every
            or source.get(service_env(service))
            or source.get(ENV_ENDPOINT)
            or fallback
        )
        if url:
            urls[service] = url
    default = every or source.get(ENV_ENDPOINT) or fallback
    return Endpoints(urls, default or None)


def localstack_endpoints(
    services: Sequence[str] = LOCALSTACK_SERVICES, host: str | None = None
) -> dict[str, str]:
    """Where LocalStack serves ``services``, by ``localstack-client``'s conventions.

    Args:
        services: The services to put on LocalStack.
        host: ``host:port`` of LocalStack (default: ``LOCALSTACK_HOST``, else
            ``localhost:4566``).
    """
    from localstack_client import config  # noqa: PLC0415 - only in LocalStack mode

    found: dict[str, str] = {}
    for service in services:
        url = config.get_service_endpoint(service, localstack_host=host)
        if url:
            found[service] = str(url)
    return found


_loader_lock = threading.Lock()
_loader: list[Any] = []


def _shared_loader() -> Any:
    """One botocore data loader per process: service models are parsed once, not per session.

    Parsing the JSON models of DynamoDB, S3 and SQS takes about a second per
    new session; the models never change, credentials and config stay per session.
    """
    with _loader_lock:
        if not _loader:
            _loader.append(botocore.loaders.create_loader())
        return _loader[0]


class RoutedSession(boto3.session.Session):
    """A boto3 session whose clients default to the endpoint :class:`Endpoints` gives their service.

    An ``endpoint_url`` passed to :meth:`client` still wins.

    Args:
        endpoints: Where each service is.
        **session: ``boto3.session.Session`` arguments (credentials, region).
    """

    def __init__(self, endpoints: Endpoints, **session: Any) -> None:
        core = botocore.session.get_session()
        loader = _shared_loader()
        core.register_component("data_loader", loader)
        super().__init__(botocore_session=core, **session)
        with _loader_lock:
            # boto3 appends its own models' folder to the loader of every session.
            loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
        self.endpoints = endpoints

    def client(self, *args: Any, **kwargs: Any) -> Any:
        """``boto3.session.Session.client`` with the service's endpoint defaulted."""
        service = str(kwargs.get("service_name") or args[0])
        url = self.endpoints.url(service)
        if url is not None:
            kwargs.setdefault("endpoint_url", url)
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:
        """``boto3.session.Session.resource`` with the service's endpoint defaulted."""
        service = str(kwargs.get("service_name") or args[0])
        url = self.endpoints.url(service)
        if url is not None:
            kwargs.setdefault("endpoint_url", url)
        return super().resource(*args, **kwargs)
