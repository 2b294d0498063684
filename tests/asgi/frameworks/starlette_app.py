"""The route contract of ``common.py`` as a Starlette application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import common
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

NAME = "starlette"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    common.say(NAME, "lifespan startup")
    yield {"token": common.token(NAME)}
    common.say(NAME, "lifespan shutdown")


async def hello(request: Request) -> Response:
    return JSONResponse({"framework": NAME, "message": "hello"})


async def item(request: Request) -> Response:
    return JSONResponse({"item_id": request.path_params["item_id"]})


async def query(request: Request) -> Response:
    params = request.query_params
    return JSONResponse({"q": params["q"], "n": int(params["n"])})


async def echo_json(request: Request) -> Response:
    return JSONResponse({"received": await request.json()})


async def echo_form(request: Request) -> Response:
    # request.form() needs python-multipart (not installed); urlencoded is easy by hand.
    fields = dict(parse_qsl((await request.body()).decode()))
    return JSONResponse({"fields": fields})


async def echo_body(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def upload(request: Request) -> Response:
    digest = common.Digest()
    async for piece in request.stream():
        digest.update(piece)
    return JSONResponse(digest.result())


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "100"))
    return StreamingResponse(common.stream_pieces(count), media_type="text/plain")


async def endless(request: Request) -> Response:
    return StreamingResponse(common.endless_pieces(NAME), media_type="text/plain")


async def file(request: Request) -> Response:
    return FileResponse(common.FILE, media_type="text/plain")


async def start_task(request: Request) -> Response:
    key = request.path_params["key"]
    job = BackgroundTask(common.background_job, key)
    return JSONResponse({"scheduled": key}, status_code=202, background=job)


async def task_status(request: Request) -> Response:
    return JSONResponse({"done": common.task_done(request.path_params["key"])})


async def state(request: Request) -> Response:
    return JSONResponse({"token": request.state.token, "pid": os.getpid()})


async def error(request: Request) -> Response:
    common.fail()
    return Response()


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


app = Starlette(
    routes=[
        Route("/json", hello),
        Route("/items/{item_id:int}", item),
        Route("/query", query),
        Route("/echo/json", echo_json, methods=["POST"]),
        Route("/echo/form", echo_form, methods=["POST"]),
        Route("/echo/body", echo_body, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/endless", endless),
        Route("/file", file),
        Route("/tasks/{key}", start_task, methods=["POST"]),
        Route("/tasks/{key}", task_status, methods=["GET"]),
        Route("/state", state),
        Route("/error", error),
        WebSocketRoute("/ws", echo_socket),
    ],
    lifespan=lifespan,
)
