"""WSGI apps for the control and metrics tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/status/N`` answers N; ``/sleep/S`` sleeps S seconds; ``/wait?FILE`` waits until
    FILE exists; anything else echoes the request body after ``ok:``."""
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()
    status = "200 OK"
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        status = f"{code} Status"
    elif path.startswith("/sleep/"):
        time.sleep(float(path.rsplit("/", 1)[1]))
    elif path == "/wait":
        flag = environ["QUERY_STRING"]
        deadline = time.monotonic() + 30
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)
    elif path == "/crash":
        os._exit(1)
    payload = b"ok:" + body
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
    return [payload]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI twin of ``app`` for ``/status/N`` and the body echo."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    path = scope["path"]
    status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
    payload = b"ok:" + body
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
