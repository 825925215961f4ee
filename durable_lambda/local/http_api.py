"""The HTTP API on localhost: real HTTP requests in, API Gateway REST proxy events out.

API Gateway turns each request into the proxy event the api function receives
and its response dict back into HTTP. :func:`lambda_wsgi` does the same in a
WSGI app, so any handler (in process, or an emulated function's ``invoke``)
answers real HTTP clients; :class:`ApiServer` serves it on a thread.
"""

from __future__ import annotations

import http
import itertools
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from durable_lambda.viewer import with_viewer

#: ``handler(event) -> response``: an API Gateway proxy event in, its response dict out.
EventHandler = Callable[[dict[str, Any]], dict[str, Any]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The stage name in ``requestContext`` (the template's stage).
STAGE = "v1"


def proxy_event(environ: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The REST API proxy event (``/{proxy+}``) API Gateway builds from one WSGI request."""
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
    method = environ["REQUEST_METHOD"]
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
        },
        "body": raw.decode("utf-8", "replace") if raw else None,
        "isBase64Encoded": False,
    }


def lambda_wsgi(handler: EventHandler) -> WsgiApp:
    """A WSGI app that answers each request with ``handler``'s response to its proxy event."""
    numbers = itertools.count(1)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = handler(proxy_event(environ, f"local-{next(numbers)}"))
        status = int(response.get("statusCode", 502))
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers += [(name, str(v)) for v in values]
        start_response(f"{status} {reason}", headers)
        return [str(response.get("body") or "").encode()]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A slow request (a trigger waiting on a cold start) must not hold up reads.
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        # The dev server prints run events, not a line per request.
        return


class ApiServer:
    """``handler`` served over HTTP on ``host:port`` from a background thread.

    Args:
        handler: Proxy event in, API Gateway response dict out.
        host: The address to listen on (localhost only by default).
        port: The port; 0 lets the OS pick a free one (see :attr:`url`).
    """

    def __init__(self, handler: EventHandler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = with_viewer(lambda_wsgi(handler))  # the run viewer at /viewer
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (valid once started).

        Raises:
            RuntimeError: The server is not running.
        """
        if self._server is None:
            raise RuntimeError("the API server is not running; call start() first")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> str:
        """Listen and serve (idempotent); the URL."""
        if self._server is None:
            server = make_server(
                self._host,
                self._port,
                self._app,
                server_class=_ThreadingServer,
                handler_class=_Quiet,
            )
            self._thread = threading.Thread(
                target=server.serve_forever, name="dl-api-server", daemon=True
            )
            self._server = server
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
