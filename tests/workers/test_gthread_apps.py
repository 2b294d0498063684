"""Real applications on the gthread worker: wsgiref's validator, Flask and Django."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.tls.server_process import GunicornProcess

VALIDATED_APP = """
from wsgiref.validate import validator

def inner(environ, start_response):
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size) if size else b""
    environ["wsgi.errors"].write("")
    payload = b"%s %s %d" % (environ["REQUEST_METHOD"].encode(),
                             environ["PATH_INFO"].encode(), len(body))
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(payload)))])
    return [payload]

app = validator(inner)
"""

FLASK_APP = """
from flask import Flask, request

app = Flask(__name__)

@app.get("/hello/<name>")
def hello(name):
    return {"hello": name, "threaded": request.environ["wsgi.multithread"]}

@app.post("/echo")
def echo():
    return request.get_data()

@app.get("/stream")
def stream():
    def chunks():
        for i in range(5):
            yield f"chunk{i};"
    return app.response_class(chunks(), mimetype="text/plain")
"""

DJANGO_APP = """
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import path


def hello(request, name):
    return JsonResponse({"hello": name, "method": request.method})


def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


urlpatterns = [path("hello/<str:name>", hello), path("echo", echo)]
app = get_wsgi_application()
"""


def serve(directory: Path, source: str) -> GunicornProcess:
    return GunicornProcess(directory, source, "-k", "gthread", "--threads", "4")


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornProcess]:
    with serve(tmp_path_factory.mktemp("validated"), VALIDATED_APP) as proc:
        yield proc


def test_wsgiref_validator_accepts_get_post_and_keep_alive(validated: GunicornProcess) -> None:
    with httpx.Client(base_url=validated.url, timeout=5) as client:
        for i in range(5):
            assert client.get(f"/v{i}?q=1").text == f"GET /v{i} 0"
            assert client.post("/post", content=b"x" * (1000 * i)).text == f"POST /post {1000 * i}"
        assert client.head("/head").status_code == 200
    log = validated.log()
    assert "Error handling request" not in log
    assert "AssertionError" not in log


def test_flask_on_gthread(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("flask")
    with (
        serve(tmp_path_factory.mktemp("flask"), FLASK_APP) as proc,
        httpx.Client(base_url=proc.url, timeout=5) as client,
    ):
        assert client.get("/hello/world").json() == {"hello": "world", "threaded": True}
        payload = bytes(range(256)) * 64
        assert client.post("/echo", content=payload).content == payload
        streamed = client.get("/stream")
        assert streamed.text == "chunk0;chunk1;chunk2;chunk3;chunk4;"
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert client.get("/missing").status_code == 404


def test_django_on_gthread(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("django")
    with (
        serve(tmp_path_factory.mktemp("django"), DJANGO_APP) as proc,
        httpx.Client(base_url=proc.url, timeout=5) as client,
    ):
        assert client.get("/hello/dj").json() == {"hello": "dj", "method": "GET"}
        payload = b"0123456789" * 500
        assert client.post("/echo", content=payload).content == payload
        assert client.get("/nowhere").status_code == 404
