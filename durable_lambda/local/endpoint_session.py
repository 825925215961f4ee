"""A boto3 session whose clients all talk to one local endpoint (moto or LocalStack).

boto3 takes endpoints from ``AWS_ENDPOINT_URL`` or the shared config file only;
this lets the emulator's own process reach the local endpoint without
changing ``os.environ`` under everyone else in the process.
"""

from __future__ import annotations

from typing import Any

import boto3

from durable_lambda.local.moto_server import DUMMY_CREDENTIALS


class EndpointSession(boto3.session.Session):
    """A session with dummy credentials whose clients and resources default to ``endpoint_url``.

    Args:
        endpoint_url: ``http://127.0.0.1:<port>``.
        region: The region of every client.
    """

    def __init__(self, endpoint_url: str, region: str) -> None:
        super().__init__(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self.endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:
        """``boto3.session.Session.client`` with ``endpoint_url`` defaulted."""
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:
        """``boto3.session.Session.resource`` with ``endpoint_url`` defaulted."""
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().resource(*args, **kwargs)
