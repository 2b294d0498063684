"""The route contract of ``common.py`` as a FastAPI application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import common
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response, StreamingResponse

NAME = "fastapi"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    common.say(NAME, "lifespan startup")
    yield {"token": common.token(NAME)}
    common.say(NAME, "lifespan shutdown")


app = FastAPI(lifespan=lifespan)


# FastAPI's @app.get answers GET only (HEAD gets 405): HEAD is asked for explicitly, and
# its body is the server's to drop.
@app.api_route("/json", methods=["GET", "HEAD"])
async def hello() -> dict[str, str]:
    return {"framework": NAME, "message": "hello"}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/query")
async def query(q: str, n: int) -> dict[str, Any]:
    return {"q": q, "n": n}


@app.post("/echo/json")
async def echo_json(request: Request) -> dict[str, Any]:
    return {"received": await request.json()}


@app.post("/echo/form")
async def echo_form(request: Request) -> dict[str, Any]:
    # Form(...) needs python-multipart (not installed); urlencoded is easy by hand.
    return {"fields": dict(parse_qsl((await request.body()).decode()))}


@app.post("/echo/body")
async def echo_body(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@app.post("/upload")
async def upload(request: Request) -> dict[str, object]:
    digest = common.Digest()
    async for piece in request.stream():
        digest.update(piece)
    return digest.result()


@app.get("/stream")
async def stream(n: int = 100) -> StreamingResponse:
    return StreamingResponse(common.stream_pieces(n), media_type="text/plain")


@app.get("/endless")
async def endless() -> StreamingResponse:
    return StreamingResponse(common.endless_pieces(NAME), media_type="text/plain")


@app.get("/file")
async def file() -> FileResponse:
    return FileResponse(common.FILE, media_type="text/plain")


@app.post("/tasks/{key}", status_code=202)
async def start_task(key: str, tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add_task(common.background_job, key)
    return {"scheduled": key}


@app.get("/tasks/{key}")
async def task_status(key: str) -> dict[str, bool]:
    return {"done": common.task_done(key)}


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"token": request.state.token, "pid": os.getpid()}


@app.get("/error")
async def error() -> None:
    common.fail()


@app.websocket("/ws")
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
