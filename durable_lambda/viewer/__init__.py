"""The run viewer: one static page over the HTTP API (run list, a run's Gantt chart, actions).

``durable-lambda dev`` serves it at ``/viewer`` beside the API. Opened with
``?api=URL`` it talks to another API instead (a deployed stage whose
authoriser takes a JWT: add ``&token=JWT``). No build step: the page is plain
HTML and JavaScript, read from the package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

__all__ = ["VIEWER_PATH", "page", "with_viewer"]

#: Where the page is served.
VIEWER_PATH = "/viewer"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def page() -> bytes:
    """The viewer's HTML."""
    return resources.files(__package__).joinpath("index.html").read_bytes()


def with_viewer(app: WsgiApp) -> WsgiApp:
    """``app`` with the viewer answering ``GET /viewer`` (and ``/``, which redirects there)."""
    html = page()

    def viewer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path in {VIEWER_PATH, VIEWER_PATH + "/"}:
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(html))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [html]
        if environ.get("REQUEST_METHOD") == "GET" and path == "/":
            start_response("302 Found", [("Location", VIEWER_PATH), ("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return viewer
