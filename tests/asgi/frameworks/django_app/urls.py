"""The views and the URL patterns (one module: the project is small)."""

from __future__ import annotations

import asyncio
import json
import os

import common
from django.core.signals import request_finished
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path

NAME = "django"


def on_request_finished(sender: object, **kwargs: object) -> None:
    common.say(NAME, "request_finished")


request_finished.connect(on_request_finished)


async def hello(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"framework": NAME, "message": "hello"})


async def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"item_id": item_id})


async def query(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"q": request.GET["q"], "n": int(request.GET["n"])})


async def echo_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"received": json.loads(request.body)})


async def echo_form(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"fields": request.POST.dict()})


async def echo_body(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type="application/octet-stream")


async def upload(request: HttpRequest) -> HttpResponse:
    digest = common.Digest()
    while piece := request.read(65536):
        digest.update(piece)
    return JsonResponse(digest.result())


async def stream(request: HttpRequest) -> HttpResponse:
    count = int(request.GET.get("n", "100"))
    return StreamingHttpResponse(common.stream_pieces(count), content_type="text/plain")


async def endless(request: HttpRequest) -> HttpResponse:
    return StreamingHttpResponse(common.endless_pieces(NAME), content_type="text/plain")


async def file(request: HttpRequest) -> HttpResponse:
    return FileResponse(open(common.FILE, "rb"), content_type="text/plain")


async def tasks(request: HttpRequest, key: str) -> HttpResponse:
    if request.method == "POST":
        common.schedule(key)
        return JsonResponse({"scheduled": key}, status=202)
    return JsonResponse({"done": common.task_done(key)})


async def state(request: HttpRequest) -> HttpResponse:
    token = request.scope["state"]["token"]
    return JsonResponse({"token": token, "pid": os.getpid()})


async def error(request: HttpRequest) -> HttpResponse:
    common.fail()
    return HttpResponse()


async def slow(request: HttpRequest) -> HttpResponse:
    """Waits until cancelled: the client's disconnect must reach it."""
    common.say(NAME, "slow view started")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        common.say(NAME, "slow view cancelled")
        raise
    return HttpResponse("too late")


urlpatterns = [
    path("json", hello),
    path("items/<int:item_id>", item),
    path("query", query),
    path("echo/json", echo_json),
    path("echo/form", echo_form),
    path("echo/body", echo_body),
    path("upload", upload),
    path("stream", stream),
    path("endless", endless),
    path("file", file),
    path("tasks/<str:key>", tasks),
    path("state", state),
    path("error", error),
    path("slow", slow),
]
