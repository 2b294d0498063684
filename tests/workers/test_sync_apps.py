"""Real applications (the examples, Flask, Django, a wsgiref-validated app) on the sync worker."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from tests.support import Gunicorn
from tests.wsgi.wire import EXAMPLES_DIR, WSGI_DIR, exchange, one, parse_replies, request_bytes


def url(server: Gunicorn) -> str:
    host, port = server.address  # type: ignore[misc]
    return f"http://{host}:{port}"


def test_hello_example() -> None:
    with Gunicorn("--chdir", str(EXAMPLES_DIR), "hello:app") as server:
        response = httpx.get(url(server) + "/")
    assert response.status_code == 200
    assert response.text == "Hello, World!\n"


def test_flask_example() -> None:
    with (
        Gunicorn("--chdir", str(EXAMPLES_DIR), "flask_app:app") as server,
        httpx.Client(base_url=url(server)) as client,
    ):
        assert client.get("/").text == "Hello from Flask!\n"
        assert client.post("/echo", content=b"flask body").content == b"flask body"
        data = client.get("/json", params={"q": "1"}).json()
        assert data == {"method": "GET", "path": "/json", "args": {"q": "1"}}
        assert client.get("/missing").status_code == 404


def test_django_example() -> None:
    with (
        Gunicorn("--chdir", str(EXAMPLES_DIR), "django_app:application") as server,
        httpx.Client(base_url=url(server)) as client,
    ):
        assert client.get("/").text == "Hello from Django!\n"
        info = client.get("/info", headers={"X-Forwarded-Proto": "https"}).json()
        assert info["path"] == "/info"
        assert client.get("/nothing-here").status_code == 404


def test_streaming_example() -> None:
    with Gunicorn("--chdir", str(EXAMPLES_DIR), "streaming:app") as server:
        reply = one(server.address, request_bytes("GET", "/?count=3&delay=0"))
    assert reply.header("transfer-encoding") == b"chunked"
    assert reply.body == b"line 1 of 3\nline 2 of 3\nline 3 of 3\n"


def test_early_hints_example() -> None:
    with Gunicorn("--chdir", str(EXAMPLES_DIR), "early_hints:app") as server:
        replies = parse_replies(exchange(server.address, request_bytes("GET", "/")))
    assert [reply.status for reply in replies] == [103, 200]
    assert replies[0].header("link") == b"</style.css>; rel=preload; as=style"
    assert b"<h1>Early hints</h1>" in replies[1].body


@pytest.mark.parametrize("sendfile", [True, False])
def test_file_wrapper_example(sendfile: bool) -> None:
    args = ["--chdir", str(EXAMPLES_DIR), "file_wrapper:app"]
    if not sendfile:
        args.insert(0, "--no-sendfile")
    with Gunicorn(*args) as server:
        reply = one(server.address, request_bytes("GET", "/"))
        missing = one(server.address, request_bytes("GET", "/?path=../../etc/passwd"))
    assert reply.body == (EXAMPLES_DIR / "file_wrapper.py").read_bytes()
    assert missing.status == 404


def test_wsgiref_validated_app() -> None:
    with Gunicorn("--chdir", str(WSGI_DIR), "apps:validated") as server:
        assert one(server.address, request_bytes("GET", "/")).body == b"Hello, World!\n"
        stream = one(server.address, request_bytes("GET", "/stream"))
        assert stream.body.count(b"chunk") == 5
        env = json.loads(one(server.address, request_bytes("GET", "/environ?x=1")).body)
        assert env["QUERY_STRING"] == "x=1"
        assert server.count("Error handling request") == 0
        assert server.count("Traceback") == 0


def test_config_file_hooks_run() -> None:
    args = ["-c", str(EXAMPLES_DIR / "gunicorn.conf.py"), "-w", "1", "--chdir", str(EXAMPLES_DIR)]
    server = Gunicorn(*args, "hello:app")
    with server:
        server.wait_for("hook post_worker_init")
        assert one(server.address, request_bytes("GET", "/hooks")).status == 200
        server.wait_for("hook post_request: GET /hooks -> 200 OK")
        server.send(signal.SIGTERM)
        assert server.wait() == 0
    log = server.log
    for hook in (
        "on_starting",
        "nworkers_changed",
        "when_ready",
        "pre_fork",
        "post_fork",
        "post_worker_init",
        "pre_request: GET /hooks",
        "worker_exit",
        "on_exit",
    ):
        assert f"hook {hook}" in log, hook
