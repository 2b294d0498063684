"""103 Early Hints from an ASGI application: ``gunicorn -k asgi early_hints_asgi:app``.

The application sends an ``http.response.informational`` message before
``http.response.start``; the server writes ``HTTP/1.1 103 Early Hints`` at once (over
HTTP/2, a HEADERS frame with ``:status 103``), so the browser can fetch the stylesheet
while the page is still being built. ``curl -v http://127.0.0.1:8000/`` shows both heads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

PAGE = b"""<!DOCTYPE html>
<html><head><link rel="stylesheet" href="/style.css"></head>
<body><h1>Early hints</h1></body></html>
"""
CSS = b"h1 { color: teal; }\n"

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    if scope["path"] == "/style.css":
        await _respond(send, b"text/css", CSS)
        return
    if scope.get("http_version") != "1.0":  # HTTP/1.0 has no 1xx responses
        await send(
            {
                "type": "http.response.informational",
                "status": 103,
                "headers": [(b"link", b"</style.css>; rel=preload; as=style")],
            }
        )
    await asyncio.sleep(0.1)  # the slow part: rendering the page
    await _respond(send, b"text/html", PAGE)


async def _respond(send: Send, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
