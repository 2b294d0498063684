"""A Starlette application on the native ASGI worker (``pip install starlette``)::

    gunicorn -k asgi starlette_app:app
    curl http://127.0.0.1:8000/
    curl -N 'http://127.0.0.1:8000/countdown?n=5'

``/countdown`` streams one line per tick; ``/echo`` is a WebSocket that echoes text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from Starlette!\n")


async def countdown(request: Request) -> StreamingResponse:
    start = int(request.query_params.get("n", "3"))

    async def ticks() -> AsyncIterator[bytes]:
        for value in range(start, 0, -1):
            yield f"{value}\n".encode()
            await asyncio.sleep(0.05)
        yield b"liftoff\n"

    return StreamingResponse(ticks(), media_type="text/plain")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        return


app = Starlette(
    routes=[Route("/", index), Route("/countdown", countdown), WebSocketRoute("/echo", echo)]
)
