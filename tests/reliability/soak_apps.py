"""The applications the soak runs against: a WSGI one and its ASGI twin, same routes.

``/`` a small fixed body; ``/echo`` the request body back (its length decides the
Content-Length); ``/hints`` a 103 Early Hints response, then 200; ``/error`` an exception
before the response starts (the server answers 500). Every response carries
Content-Length, so a client can frame it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tests.lifespan import serve_lifespan

BODY = b"soak ok\n"
HINTED = b"hinted\n"
StartResponse = Callable[..., Any]


class Boom(Exception):
    """The application failure of ``/error``."""


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
    elif path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</s.css>; rel=preload; as=style")])
        body = HINTED
    elif path == "/error":
        raise Boom("the soak's failing endpoint")
    else:
        body = BODY
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def _body(receive: Any) -> bytes:
    pieces = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        pieces.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(pieces)


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/echo":
        body = await _body(receive)
    elif path == "/hints":
        link = (b"link", b"</s.css>; rel=preload; as=style")
        await send({"type": "http.response.informational", "status": 103, "headers": [link]})
        body = HINTED
    elif path == "/error":
        raise Boom("the soak's failing endpoint")
    else:
        body = BODY
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
