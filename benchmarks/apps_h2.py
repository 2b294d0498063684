"""Apps served by the HTTP/2 benchmark: hello world on ``/``, N bytes on ``/bytes/N``.

``app`` is the WSGI app and ``asgi_app`` its ASGI twin; both answer the same paths with
the same bodies, so one h2load command line serves every server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from typing import Any

StartResponse = Callable[..., Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HELLO_BODY = b"Hello, World!"
BYTES_PREFIX = "/bytes/"
MAX_BYTES = 64 * 1024 * 1024


@lru_cache(maxsize=8)
def _payload(size: int) -> bytes:
    return b"x" * size


def route(path: str) -> tuple[int, bytes, bytes]:
    """Status, content type and body for a request path."""
    if path.startswith(BYTES_PREFIX):
        digits = path[len(BYTES_PREFIX) :]
        if digits.isdigit() and int(digits) <= MAX_BYTES:
            return 200, b"application/octet-stream", _payload(int(digits))
        return 404, b"text/plain", b"Not Found"
    return 200, b"text/plain", HELLO_BODY


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    status, content_type, body = route(environ.get("PATH_INFO", "/"))
    start_response(
        "200 OK" if status == 200 else "404 Not Found",
        [("Content-Type", content_type.decode()), ("Content-Length", str(len(body)))],
    )
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    status, content_type, body = route(scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
