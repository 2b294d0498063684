"""A WebSocket chat room in plain ASGI: ``gunicorn -k asgi -w 1 websocket_chat:app``.

Open http://127.0.0.1:8000/ in two browser tabs: what one sends, every tab sees. The room
lives in the worker's memory, so run one worker (or share the room through Redis or
similar to run more).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Chat</title></head>
<body>
<ul id="log"></ul>
<form id="form"><input id="name" value="anon" size="8"><input id="text" autofocus>
<button>Send</button></form>
<script>
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
ws.onmessage = (event) => {
  const {name, text} = JSON.parse(event.data);
  const item = document.createElement("li");
  item.textContent = name + ": " + text;
  document.getElementById("log").append(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  ws.send(JSON.stringify({name: document.getElementById("name").value, text: text.value}));
  text.value = "";
};
</script>
</body></html>
"""

#: Every connected client's ``send``: a message is written to all of them.
ROOM: set[Send] = set()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket" and scope["path"] == "/ws":
        await chat(receive, send)
    elif scope["type"] == "http":
        status, body = (200, PAGE) if scope["path"] == "/" else (404, b"not found\n")
        content_type = b"text/html; charset=utf-8" if status == 200 else b"text/plain"
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})


async def chat(receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    ROOM.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            try:
                said = json.loads(text)
                line = json.dumps({"name": str(said["name"]), "text": str(said["text"])})
            except (ValueError, KeyError, TypeError):
                continue  # not a chat message
            await broadcast(line)
    finally:
        ROOM.discard(send)


async def broadcast(line: str) -> None:
    for member in list(ROOM):
        try:
            await member({"type": "websocket.send", "text": line})
        except Exception:  # that client is gone; its own loop removes it
            ROOM.discard(member)
