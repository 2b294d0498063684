"""ASGI counterparts of ``apps.py``, for the uvicorn reference rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HELLO_BODY = b"Hello, World!"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Send, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A fixed 13-byte text/plain body."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _respond(send, HELLO_BODY, b"text/plain")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The request body sent back unchanged."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await _respond(send, b"".join(chunks), b"application/octet-stream")


BIG_BODY = b"x" * 65536


async def big(scope: Scope, receive: Receive, send: Send) -> None:
    """A 64 KiB application/octet-stream body."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _respond(send, BIG_BODY, b"application/octet-stream")
