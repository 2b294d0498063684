"""WSGI applications served by real gunicorn processes in the worker tests.

``app`` dispatches on the path; ``validated`` is the same app behind ``wsgiref.validate``.
Start a server with ``--chdir tests/wsgi apps:app``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

CALLS = {"count": 0}


def _reply(
    start_response: StartResponse,
    body: bytes,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    length: bool = True,
) -> list[bytes]:
    out = [("Content-Type", "text/plain")]
    out.extend(headers or [])
    if length:
        out.append(("Content-Length", str(len(body))))
    start_response(status, out)
    return [body]


def _query(environ: Environ) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(environ["QUERY_STRING"]).items()}


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, b"Hello, World!\n")


def echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    query = _query(environ)
    return _reply(start_response, body, length=query.get("length", "1") == "1")


def echo_lines(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    lines = list(environ["wsgi.input"])
    return _reply(start_response, json.dumps([line.decode("latin-1") for line in lines]).encode())


def environ_dump(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    data = {key: value for key, value in environ.items() if isinstance(value, (str, bool, int))}
    data["wsgi.version"] = list(environ["wsgi.version"])
    data["has_socket"] = environ.get("gunicorn.socket") is not None
    return _reply(
        start_response,
        json.dumps(data, sort_keys=True).encode(),
        headers=[("Content-Type", "application/json")],
    )


def crash(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("crash requested by the test")


def crash_after_head(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial "
    raise RuntimeError("crash after the head")


def bad_header(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, b"never", headers=[("X-Bad", "a\r\nX-Injected: yes")])


def bad_status(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("2OO OK", [])
    return [b"never"]


def status(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    code = environ["PATH_INFO"].rsplit("/", 1)[1]
    start_response(f"{code} Test", [("Content-Type", "text/plain")])
    return [b"body the server must drop"]


def early_hints(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
    return _reply(start_response, b"after hints")


def stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    for index in range(5):
        yield f"chunk {index}\n".encode()


def file_response(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    query = _query(environ)
    path = os.environ["TEST_DATA_FILE"]
    handle = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
    offset = int(query.get("offset", "0"))
    handle.seek(offset)
    headers = [("Content-Type", "application/octet-stream")]
    if query.get("length", "1") == "1":
        headers.append(("Content-Length", str(os.path.getsize(path) - offset)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](handle)


def sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    time.sleep(float(_query(environ).get("t", "1")))
    return _reply(start_response, b"slept")


def gate(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Touch ``<dir>/entered``; answer once ``<dir>/release`` exists (30 s at most)."""
    folder = _query(environ)["dir"]
    with open(os.path.join(folder, "entered"), "w"):
        pass
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _reply(start_response, b"released")


def spin(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Busy in Python code (not in a system call) for ``t`` seconds."""
    ends = time.monotonic() + float(_query(environ).get("t", "1"))
    while time.monotonic() < ends:
        pass
    return _reply(start_response, b"spun")


def pid(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, str(os.getpid()).encode())


def calls(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, str(CALLS["count"]).encode())


def errors_stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    environ["wsgi.errors"].write("message for wsgi.errors\n")
    return _reply(start_response, b"logged")


def short_body(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "10")])
    return [b"12345"]


def long_body(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "10")])
    return [b"1234567890", b"EXTRA BYTES"]


def ignore_body(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, b"ignored the body")


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/": hello,
    "/echo": echo,
    "/lines": echo_lines,
    "/environ": environ_dump,
    "/crash": crash,
    "/crash-after-head": crash_after_head,
    "/bad-header": bad_header,
    "/bad-status": bad_status,
    "/early-hints": early_hints,
    "/stream": stream,
    "/file": file_response,
    "/sleep": sleep,
    "/gate": gate,
    "/spin": spin,
    "/pid": pid,
    "/errors": errors_stream,
    "/ignore-body": ignore_body,
    "/short-body": short_body,
    "/long-body": long_body,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/__calls":
        return calls(environ, start_response)
    CALLS["count"] += 1
    if path.startswith("/status/"):
        return status(environ, start_response)
    handler = ROUTES.get(path)
    if handler is None:
        return _reply(start_response, b"not found", "404 Not Found")
    return handler(environ, start_response)


validated = validator(app)
