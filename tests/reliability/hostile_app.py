"""The application the hostile-input battery runs against (WSGI ``app`` and ASGI ``asgi``).

Every call is logged to the file named by ``HOSTILE_CALLS_FILE`` (one JSON line per event,
one ``write`` on an ``O_APPEND`` descriptor, so several worker processes share it): an
``enter`` line when the application is invoked, a ``done`` line once it has read the whole
request body. ``/__calls`` answers that log (it is never logged itself), so a test reads
what the application saw on a fresh connection. Any other target is echoed as JSON
(method, target, body).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from tests.lifespan import serve_lifespan

CALLS_PATH = "/__calls"
StartResponse = Callable[..., Any]


def _log(event: str, method: str, target: str, body: bytes | None = None) -> None:
    entry: dict[str, Any] = {"event": event, "method": method, "target": target}
    if body is not None:
        entry["body"] = body.decode("latin-1")
    fd = os.open(os.environ["HOSTILE_CALLS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _calls_payload() -> bytes:
    path = os.environ["HOSTILE_CALLS_FILE"]
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
    return json.dumps(lines).encode()


def _echo_payload(method: str, target: str, body: bytes) -> bytes:
    return json.dumps({"method": method, "target": target, "body": body.decode("latin-1")}).encode()


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == CALLS_PATH:
        payload = _calls_payload()
    else:
        method, target = environ["REQUEST_METHOD"], environ["RAW_URI"]
        _log("enter", method, target)
        body = environ["wsgi.input"].read()
        _log("done", method, target, body)
        payload = _echo_payload(method, target, body)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    start_response("200 OK", headers)
    return [payload]


async def _read_body(receive: Any) -> bytes | None:
    pieces = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # disconnected before the body was complete
        pieces.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(pieces)


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    if scope["type"] == "websocket":
        _log("enter", "GET", target)
        await send({"type": "websocket.close"})  # refuse the handshake
        return
    if scope["path"] == CALLS_PATH:
        payload = _calls_payload()
    else:
        _log("enter", scope["method"], target)
        body = await _read_body(receive)
        if body is None:
            return
        _log("done", scope["method"], target, body)
        payload = _echo_payload(scope["method"], target, body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
