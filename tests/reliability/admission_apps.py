"""The applications the idle-flood, EMFILE and slow-client tests serve (WSGI and ASGI).

Routes: ``/upload`` reads the whole request body and answers its length; ``/big`` answers
``BIG`` bytes (a response larger than the socket buffers, for slow readers); anything
else answers ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tests.lifespan import serve_lifespan

BIG = 8 * 1024 * 1024
_CHUNK = b"x" * 65536


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/upload":
        body = str(len(environ["wsgi.input"].read())).encode()
    elif path == "/big":
        start_response("200 OK", [("Content-Length", str(BIG))])
        return (_CHUNK for _ in range(BIG // len(_CHUNK)))
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path = scope["path"]
    size = 0
    if path == "/upload":
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
    length = BIG if path == "/big" else len(str(size)) if path == "/upload" else 2
    headers = [(b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/big":
        for _ in range(BIG // len(_CHUNK)):
            await send({"type": "http.response.body", "body": _CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = str(size).encode() if path == "/upload" else b"ok"
    await send({"type": "http.response.body", "body": body})
