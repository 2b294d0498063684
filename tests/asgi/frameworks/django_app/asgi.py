"""The ASGI entry point: Django for HTTP, plus what Django has no part of itself.

Django answers ``lifespan`` scopes with an error and has no WebSockets (that is what
Channels adds), so, as a Channels-style router would, this module handles lifespan (the
``state`` Django views read from ``request.scope``) and a plain ASGI echo for ``/ws``.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

import common
from django.core.asgi import get_asgi_application

NAME = "django"

django_application = get_asgi_application()


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            common.say(NAME, "lifespan startup")
            scope["state"]["token"] = common.token(NAME)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            common.say(NAME, "lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def echo_socket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1000})
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http":
        await django_application(scope, receive, send)
    elif kind == "websocket":
        await echo_socket(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(scope, receive, send)
