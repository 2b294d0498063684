"""The ASGI twin of ``every_apps.py``: the same routes for the asgi worker in
``test_every_worker`` (the echo gives the target as ``raw_path`` and ``query_string``
rebuild it; ``/__file`` uses ``http.response.pathsend``; ``/__environ`` gives the WSGI names
of what the scope holds)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

BODY = b"hello"
Scope = dict[str, Any]


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


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


async def _start(send: Any, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            message = await receive()
            await send({"type": message["type"] + ".complete"})
        return
    path = scope["path"]
    if path == "/__framing":
        query = _query(scope)
        sets = query.get("sets", "nothing")
        headers = [(b"content-type", b"text/plain")]
        if sets == "content-length":
            headers.append((b"content-length", b"%d" % len(BODY)))
        elif sets == "chunked":
            headers.append((b"transfer-encoding", b"chunked"))
        await _start(send, int(query["status"]), headers)
        await send({"type": "http.response.body", "body": BODY})
    elif path == "/__hints":
        await send(
            {
                "type": "http.response.informational",
                "status": 103,
                "headers": [(b"link", b"</style.css>; rel=preload; as=style")],
            }
        )
        await _start(send, 200, [(b"content-type", b"text/plain"), (b"content-length", b"11")])
        await send({"type": "http.response.body", "body": b"after hints"})
    elif path == "/__file":
        file = os.environ["TEST_DATA_FILE"]
        size = os.path.getsize(file)
        await _start(
            send,
            200,
            [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % size)],
        )
        await send({"type": "http.response.pathsend", "path": file})
    elif path == "/__environ":
        client = scope["client"] or (None, None)
        seen = {
            "REMOTE_ADDR": client[0],
            "REMOTE_PORT": str(client[1]) if client[1] is not None else None,
            "PATH_INFO": scope["path"],
            "QUERY_STRING": scope["query_string"].decode("latin-1"),
            "wsgi.url_scheme": scope["scheme"],
        }
        await _json(send, seen)
    elif path == "/__lines":
        body = await _body(receive)
        got = [line.strip() for line in body.decode("latin-1").splitlines()]
        payload = "|".join(got).encode("latin-1")
        await _start(send, 200, [(b"content-type", b"text/plain")])
        await send({"type": "http.response.body", "body": payload})
    elif path == "/__sleep":
        seconds = float(_query(scope).get("t", "1"))
        print(f"in flight: {scope['query_string'].decode()}", file=sys.stderr, flush=True)
        await asyncio.sleep(seconds)
        await _start(send, 200, [(b"content-type", b"text/plain"), (b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"slept"})
    else:
        body = await _body(receive)
        target = scope["raw_path"]
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        seen = {
            "method": scope["method"],
            "target": target.decode("latin-1"),
            "body": body.decode("latin-1"),
        }
        await _json(send, seen)


async def _json(send: Any, seen: dict[str, Any]) -> None:
    payload = json.dumps(seen).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await _start(send, 200, headers)
    await send({"type": "http.response.body", "body": payload})
