"""The applications behind the proxies of ``test_proxies``: a WSGI one and its ASGI twin.

Every request is answered with a JSON object of what the application saw (method,
target, body length, the client address as the server reports it, ``X-Forwarded-For`` and
``X-Client-Port`` as the proxy set them) and the same object is appended as one line to
the file named by ``PROXY_APP_LOG``, so a test can prove which requests reached the app.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from tests.lifespan import serve_lifespan

StartResponse = Callable[..., Any]


def _log(seen: dict[str, Any]) -> bytes:
    payload = json.dumps(seen).encode()
    fd = os.open(os.environ["PROXY_APP_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, payload + b"\n")
    finally:
        os.close(fd)
    return payload


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    target = environ.get("RAW_URI") or environ["PATH_INFO"]
    payload = _log(
        {
            "method": environ["REQUEST_METHOD"],
            "target": target,
            "body_length": len(body),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "remote_port": environ.get("REMOTE_PORT"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "client_port": environ.get("HTTP_X_CLIENT_PORT"),
        }
    )
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    start_response("200 OK", headers)
    return [payload]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    length = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        length += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    client = scope.get("client") or (None, None)
    payload = _log(
        {
            "method": scope["method"],
            "target": target,
            "body_length": length,
            "remote_addr": client[0],
            "remote_port": None if client[1] is None else str(client[1]),
            "forwarded_for": headers.get("x-forwarded-for"),
            "client_port": headers.get("x-client-port"),
        }
    )
    response_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(payload)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": response_headers})
    await send({"type": "http.response.body", "body": payload})
