"""WSGI applications served by the server benchmark."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

HELLO_BODY = b"Hello, World!"


def hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A fixed 13-byte text/plain body."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO_BODY)))],
    )
    return [HELLO_BODY]


def echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The request body sent back unchanged."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else stream.read()
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
    )
    return [body]
