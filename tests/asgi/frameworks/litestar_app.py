"""The route contract of ``common.py`` as a Litestar application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

import common
from litestar import Litestar, Request, Response, WebSocket, get, post, route, websocket
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.enums import HttpMethod, RequestEncodingType
from litestar.params import Body
from litestar.response import File, Stream

NAME = "litestar"


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    common.say(NAME, "lifespan startup")
    app.state.token = common.token(NAME)
    yield
    common.say(NAME, "lifespan shutdown")


# Litestar's @get answers GET only: HEAD is asked for explicitly, and its body is the
# server's to drop.
@route("/json", http_method=[HttpMethod.GET, HttpMethod.HEAD])
async def hello() -> dict[str, str]:
    return {"framework": NAME, "message": "hello"}


@get("/items/{item_id:int}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@get("/query")
async def query(q: str, n: int) -> dict[str, Any]:
    return {"q": q, "n": n}


@post("/echo/json", status_code=200)
async def echo_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"received": await request.json()}


@post("/echo/form", status_code=200)
async def echo_form(
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> dict[str, Any]:
    return {"fields": data}


@post("/echo/body", status_code=200, media_type="application/octet-stream")
async def echo_body(request: Request[Any, Any, Any]) -> bytes:
    return await request.body()


@post("/upload", status_code=200)
async def upload(request: Request[Any, Any, Any]) -> dict[str, object]:
    digest = common.Digest()
    async for piece in request.stream():
        digest.update(piece)
    return digest.result()


@get("/stream")
async def stream(n: int = 100) -> Stream:
    return Stream(common.stream_pieces(n), media_type="text/plain")


@get("/endless")
async def endless() -> Stream:
    return Stream(common.endless_pieces(NAME), media_type="text/plain")


@get("/file")
async def file() -> File:
    return File(path=common.FILE, media_type="text/plain", content_disposition_type="inline")


@post("/tasks/{key:str}", status_code=202)
async def start_task(key: str) -> Response[dict[str, str]]:
    job = BackgroundTask(common.background_job, key)
    return Response({"scheduled": key}, status_code=202, background=job)


@get("/tasks/{key:str}")
async def task_status(key: str) -> dict[str, bool]:
    return {"done": common.task_done(key)}


@get("/state")
async def state(state: State) -> dict[str, Any]:
    return {"token": state.token, "pid": os.getpid()}


@get("/error")
async def error() -> None:
    common.fail()


@websocket("/ws")
async def echo_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    while True:
        message = cast("dict[str, Any]", await socket.receive())
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await socket.send_text(message["text"])
        else:
            await socket.send_bytes(message["bytes"])


app = Litestar(
    route_handlers=[
        hello,
        item,
        query,
        echo_json,
        echo_form,
        echo_body,
        upload,
        stream,
        endless,
        file,
        start_task,
        task_status,
        state,
        error,
        echo_socket,
    ],
    lifespan=[lifespan],
)
