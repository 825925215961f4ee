"""The API handler served over real HTTP on localhost, as API Gateway would call it.

A tiny WSGI adapter turns each HTTP request into the REST proxy event Lambda
receives (no IAM identity: what a webhook sender looks like) and calls the
handler; :func:`serve` runs it on a free port in a thread.
"""

from __future__ import annotations

import http
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LambdaContext:
    """The parts of a Lambda context the API handler reads."""

    aws_request_id = "http-api"
    function_name = "api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def lambda_wsgi(handler: Handler, calls: list[int]) -> Any:
    """A WSGI app calling ``handler`` with the REST proxy event of each request."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        # PEP 3333 hands the path over as latin-1; API Gateway decodes it as UTF-8.
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        event = {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": environ["REQUEST_METHOD"],
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}",
                "httpMethod": environ["REQUEST_METHOD"],
                "path": "/v1" + path,
                "stage": "v1",
                "requestId": f"fuzz-{len(calls)}",
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": raw.decode("utf-8", "replace") if raw else None,
            "isBase64Encoded": False,
        }
        calls.append(1)
        response = handler(event, LambdaContext())
        status = int(response["statusCode"])
        reason = http.HTTPStatus(status).phrase
        headers_out = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers_out += [(name, str(v)) for v in values]
        start_response(f"{status} {reason}", headers_out)
        return [(response.get("body") or "").encode()]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        return


@contextmanager
def serve(handler: Handler, calls: list[int] | None = None) -> Iterator[str]:
    """Serve ``handler`` on ``127.0.0.1`` (a free port) until the block ends; its base URL."""
    server = make_server(
        "127.0.0.1",
        0,
        lambda_wsgi(handler, calls if calls is not None else []),
        handler_class=_Quiet,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
