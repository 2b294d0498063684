"""The ASGI application served to the HTTP/2 tests (``tests.http2.asgi_apps:app``).

The same routes and observable behaviour as the WSGI ``tests.http2.apps`` (read its docstring),
written natively for ASGI 3:

* the body of ``/echo`` and ``/partial`` is read with ``receive()``, piece by piece;
* ``/early-hints`` sends ``http.response.informational`` (103);
* ``/trailers`` sends ``http.response.trailers`` when the scope offers the extension;
* ``/slow`` waits with ``asyncio.sleep`` (the loop keeps serving other requests);
* ``/headers`` answers with the scope (``type``, ``http_version``, ``method``, ``path``,
  ``query_string``, ``scheme``, ``headers`` as a name -> value object, ``extensions``)
  instead of a WSGI environ; :func:`request_view` reads either.

Calls are recorded to ``H2_TEST_CALLS`` exactly as ``apps.py`` records them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from tests.http2.apps import LARGE_DEFAULT, pattern

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_PIECE = 1 << 16


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _record(scope: Scope) -> None:
    path = os.environ.get("H2_TEST_CALLS")
    if not path:
        return
    line = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "case": _header(scope, b"x-case"),
        }
    )
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _param(scope: Scope, name: str, default: str) -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[-1] if values else default


async def _respond(
    send: Send, body: bytes, status: int = 200, content_type: bytes = b"text/plain"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The request body, read one ``http.request`` at a time; with ``limit``, stop as soon
    as that many bytes arrived (like ``wsgi.input.read(limit)``)."""
    body = bytearray()
    while limit is None or len(body) < limit:
        message = await receive()
        if message["type"] != "http.request":
            break  # http.disconnect
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return bytes(body if limit is None else body[:limit])


async def _large(send: Send, n: int) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % n)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    sent = 0
    while sent < n:
        size = min(_PIECE, n - sent)
        more = sent + size < n
        await send({"type": "http.response.body", "body": pattern(size, sent), "more_body": more})
        sent += size
    if n == 0:
        await send({"type": "http.response.body", "body": b""})


def _scope_json(scope: Scope) -> bytes:
    info = {
        "type": scope["type"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "path": scope["path"],
        "query_string": scope["query_string"].decode("latin-1"),
        "scheme": scope["scheme"],
        "headers": {
            bytes(k).decode("latin-1"): bytes(v).decode("latin-1") for k, v in scope["headers"]
        },
        "extensions": sorted(scope.get("extensions") or {}),
    }
    return json.dumps(info, sort_keys=True).encode()


async def _trailers(scope: Scope, send: Send) -> None:
    trailers = "http.response.trailers" in (scope.get("extensions") or {})
    headers = [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]
    start: Message = {"type": "http.response.start", "status": 200, "headers": headers}
    if trailers:
        start["trailers"] = True
    await send(start)
    await send({"type": "http.response.body", "body": b"body before trailers\n"})
    if trailers:
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"c0ffee")]})


async def _early_hints(send: Send) -> None:
    # Sent whether or not the scope lists the extension, as apps.py always calls
    # wsgi.early_hints: the server decides whether the client can get a 103.
    link = (b"link", b"</style.css>; rel=preload; as=style")
    await send({"type": "http.response.informational", "status": 103, "headers": [link]})
    await _respond(send, b"after hints\n")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Route the request (see the module docstring and ``tests.http2.apps``)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    _record(scope)
    path = scope["path"]
    if path == "/echo":
        body = await _read_body(receive)
        await _respond(send, body, content_type=b"application/octet-stream")
    elif path == "/large":
        await _large(send, int(_param(scope, "n", str(LARGE_DEFAULT))))
    elif path == "/headers":
        await _respond(send, _scope_json(scope), content_type=b"application/json")
    elif path == "/early-hints":
        await _early_hints(send)
    elif path == "/trailers":
        await _trailers(scope, send)
    elif path == "/slow":
        await asyncio.sleep(float(_param(scope, "delay", "1")))
        await _respond(send, b"slow\n")
    elif path == "/partial":
        got = await _read_body(receive, int(_param(scope, "read", "0")))
        await _respond(send, f"read {len(got)}\n".encode())
    elif path == "/status":
        code = int(_param(scope, "code", "204"))
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _respond(send, b"hello world\n")


def request_view(info: dict[str, Any]) -> dict[str, str]:
    """What ``/headers`` reports, from either app, as a few common facts: ``protocol``
    (``HTTP/2.0``), ``query``, ``scheme``, and ``header:<name>`` for each request field."""
    if info.get("type") == "http":  # the ASGI scope
        view = {
            "protocol": f"HTTP/{info['http_version']}",
            "query": info["query_string"],
            "scheme": info["scheme"],
        }
        view.update({f"header:{k}": v for k, v in info["headers"].items()})
        return view
    view = {  # the WSGI environ
        "protocol": info["SERVER_PROTOCOL"],
        "query": info["QUERY_STRING"],
        "scheme": info["wsgi.url_scheme"],
    }
    for key, value in info.items():
        if key.startswith("HTTP_"):
            view["header:" + key[5:].lower().replace("_", "-")] = value
    return view
