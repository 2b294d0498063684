"""ASGI applications for the asgi worker's tests (served by real ``gunicorn -k asgi``).

``ASGI_TEST_RECORD`` names a file where routes append what they observed (one line each);
``ASGI_LIFESPAN`` = ``fail`` makes startup fail, ``raise`` makes the lifespan task raise.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]

_released = asyncio.Event()


def record(line: str) -> None:
    path = os.environ.get("ASGI_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


async def respond(send: Any, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> tuple[bytes, int]:
    pieces = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client left")
        pieces.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(pieces), len(pieces)


async def lifespan(scope: Scope, receive: Any, send: Any) -> None:
    mode = os.environ.get("ASGI_LIFESPAN", "")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if mode == "raise":
                raise RuntimeError("no lifespan here")
            if mode == "fail":
                await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                return
            scope["state"]["greeting"] = "from lifespan"
            record("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            record("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def gate(folder: str) -> None:
    """Touch ``<folder>/entered``; return once ``<folder>/release`` exists (30 s at most)."""
    with open(os.path.join(folder, "entered"), "w", encoding="utf-8"):
        pass
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def _scope_json(scope: Scope) -> bytes:
    shown = {
        key: value
        for key, value in scope.items()
        if key not in ("headers", "raw_path", "query_string", "state", "extensions")
    }
    shown["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    shown["raw_path"] = scope["raw_path"].decode("latin-1")
    shown["query_string"] = scope["query_string"].decode("latin-1")
    shown["state"] = dict(scope.get("state", {}))
    extensions = scope.get("extensions") or {}
    shown["extensions"] = sorted(extensions)
    tls = extensions.get("tls")
    if tls is not None:
        shown["tls"] = {k: v for k, v in tls.items() if k != "client_cert_chain"}
        shown["tls"]["chain_length"] = len(tls["client_cert_chain"])
    return json.dumps(shown).encode()


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode())
    if path.endswith("/scope"):
        await respond(send, 200, _scope_json(scope), [(b"content-type", b"application/json")])
    elif path == "/echo":
        body, pieces = await read_body(receive)
        await respond(send, 200, body, [(b"x-pieces", str(pieces).encode())])
    elif path == "/ignore-body":
        await respond(send, 200, b"not read")
    elif path == "/stream":
        n = int(query.get("n", ["5"])[0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/hints":
        await send(
            {
                "type": "http.response.informational",
                "status": 103,
                "headers": [(b"link", b"</style.css>; rel=preload; as=style")],
            }
        )
        await respond(send, 200, b"hinted")
    elif path == "/trailers":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": query["path"][0]})
    elif path == "/cl-over":
        await respond(send, 200, b"0123456789", [(b"content-length", b"5")])
    elif path == "/cl-short":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        await send({"type": "http.response.body", "body": b"01234"})
    elif path == "/status":
        code = int(query["code"][0])
        await respond(send, code, b"body that must not be sent", [(b"content-length", b"26")])
    elif path == "/raise":
        raise RuntimeError("boom before start")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/noresponse":
        return
    elif path == "/hold":
        await respond(send, 200, b"held")
        await _released.wait()
        record("hold finished")
    elif path == "/release":
        _released.set()
        await respond(send, 200, b"released")
    elif path == "/wait-disconnect":
        await read_body(receive)
        record("waiting for the disconnect")
        message = await receive()
        record(f"got {message['type']}")
    elif path == "/sleep-forever":
        try:
            record("sleeping")
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            record("cancelled")
            raise
    elif path == "/gate":
        await gate(query["dir"][0])
        await respond(send, 200, b"released")
    elif path == "/sleep":
        await asyncio.sleep(float(query["s"][0]))
        await respond(send, 200, b"slept")
    elif path == "/block":
        time.sleep(float(query["s"][0]))
        await respond(send, 200, b"blocked")
    elif path == "/bad-header":
        await respond(send, 200, b"never", [(b"bad header", b"x")])
    elif path == "/send-after-disconnect":
        record("waiting to send")
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        try:
            await respond(send, 200, b"too late")
        except OSError as exc:
            record(f"send after disconnect raised {type(exc).__name__}")
    elif path == "/state":
        await respond(send, 200, json.dumps(dict(scope.get("state", {}))).encode())
    elif path == "/big":
        n = int(query.get("n", ["1048576"])[0])
        await respond(send, 200, b"x" * n)
    else:
        await respond(send, 200, b"hello", [(b"content-type", b"text/plain")])
