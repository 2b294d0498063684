"""An ASGI app calling the dirty apps with the async client (served by ``-k asgi``)."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

from gunicorn.dirty import DirtyError, get_dirty_client_async


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    params = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
    query = json.loads(params["q"][0]) if "q" in params else {}
    answer: dict[str, Any] = {"worker": os.getpid()}
    client = await get_dirty_client_async(timeout=query.get("client_timeout", 30.0))
    try:
        if query.get("op") == "stream":
            answer["result"] = [
                c async for c in client.stream_async(query["app"], query["action"], *query["args"])
            ]
        else:
            answer["result"] = await client.execute_async(
                query["app"], query["action"], *query.get("args", [])
            )
    except DirtyError as exc:
        answer["error"] = type(exc).__name__
        answer["message"] = exc.message
        answer["details"] = {k: v for k, v in exc.details.items() if k != "traceback"}
    body = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
