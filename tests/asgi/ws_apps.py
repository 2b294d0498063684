"""The WebSocket application of ``test_websocket_server.py``: one route per behaviour.
What the application sees (disconnect codes, errors) is appended to the file named by
``WS_TEST_RECORD`` as JSON lines."""

from __future__ import annotations

import json
import os
from typing import Any


def record(**fields: Any) -> None:
    path = os.environ.get("WS_TEST_RECORD")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(fields) + "\n")


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    subprotocols = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": subprotocols[0] if subprotocols else None,
            "headers": [(b"x-scope-scheme", scope["scheme"].encode())],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(path=scope["path"], code=message["code"], reason=message.get("reason", ""))
            try:
                await send({"type": "websocket.send", "text": "after disconnect"})
            except OSError as exc:
                record(path=scope["path"], send_error=type(exc).__name__)
            return
        if message.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4001, "reason": "as asked"})
            continue
        if message.get("text") == "raise":
            raise RuntimeError("boom after accept")
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not a websocket"})
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/echo":
        await echo(scope, receive, send)
    elif path == "/forbidden":
        await send({"type": "websocket.close"})
    elif path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who are you?\n"})
    elif path == "/raise":
        raise RuntimeError("boom before accept")
