"""A boto3 session on local endpoints (moto, LocalStack) with dummy credentials.

boto3 takes endpoints from ``AWS_ENDPOINT_URL[_<SERVICE>]`` or the shared
config file only; this lets the emulator's own process reach the local
endpoints without changing ``os.environ`` under everyone else in the process.
"""

from __future__ import annotations

from collections.abc import Mapping

from durable_lambda.local.endpoints import Endpoints, RoutedSession
from durable_lambda.local.moto_server import DUMMY_CREDENTIALS


class EndpointSession(RoutedSession):
    """A session with dummy credentials whose clients default to ``endpoint_url``.

    Args:
        endpoint_url: ``http://127.0.0.1:<port>``: every service not in ``services``.
        region: The region of every client.
        services: Per service (``"sqs"``, ``"s3"``...), another endpoint.
    """

    def __init__(
        self, endpoint_url: str, region: str, *, services: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            Endpoints(dict(services or {}), default=endpoint_url),
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self.endpoint_url = endpoint_url
