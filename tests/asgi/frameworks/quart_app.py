"""The route contract of ``common.py`` as a Quart application."""

from __future__ import annotations

import os
from typing import Any

import common
from quart import Quart, Response, request, send_file, websocket

NAME = "quart"

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    common.say(NAME, "lifespan startup")
    app.config["TOKEN"] = common.token(NAME)


@app.after_serving
async def shutdown() -> None:
    common.say(NAME, "lifespan shutdown")


@app.get("/json")
async def hello() -> dict[str, str]:
    return {"framework": NAME, "message": "hello"}


@app.get("/items/<int:item_id>")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/query")
async def query() -> dict[str, Any]:
    return {"q": request.args["q"], "n": int(request.args["n"])}


@app.post("/echo/json")
async def echo_json() -> dict[str, Any]:
    return {"received": await request.get_json()}


@app.post("/echo/form")
async def echo_form() -> dict[str, Any]:
    return {"fields": dict(await request.form)}


@app.post("/echo/body")
async def echo_body() -> Response:
    return Response(await request.get_data(as_text=False), mimetype="application/octet-stream")


@app.post("/upload")
async def upload() -> dict[str, object]:
    digest = common.Digest()
    async for piece in request.body:
        digest.update(piece)
    return digest.result()


@app.get("/stream")
async def stream() -> Response:
    count = int(request.args.get("n", "100"))
    return Response(common.stream_pieces(count), mimetype="text/plain")


@app.get("/endless")
async def endless() -> Response:
    return Response(common.endless_pieces(NAME), mimetype="text/plain")


@app.get("/file")
async def file() -> Response:
    return await send_file(common.FILE, mimetype="text/plain")


@app.post("/tasks/<key>")
async def start_task(key: str) -> tuple[dict[str, str], int]:
    app.add_background_task(common.background_job, key)
    return {"scheduled": key}, 202


@app.get("/tasks/<key>")
async def task_status(key: str) -> dict[str, bool]:
    return {"done": common.task_done(key)}


@app.get("/state")
async def state() -> dict[str, Any]:
    return {"token": app.config["TOKEN"], "pid": os.getpid()}


@app.get("/error")
async def error() -> str:
    common.fail()
    return ""


@app.websocket("/ws")
async def echo_socket() -> None:
    await websocket.accept()
    while True:
        await websocket.send(await websocket.receive())
